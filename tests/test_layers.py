"""The layers of pyproject's import-linter contracts: every foundation module is under them,
and they break when an import goes the wrong way."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
DOMAIN_AND_INTERFACES = {"api", "cli", "producer", "worker"}


def contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, str(ROOT / "scripts" / "staged_tree.py"), "--root", str(root)),
            *("--", str(LINT_IMPORTS), str(root / "pyproject.toml")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_module_beside_the_domain_is_a_foundation_source() -> None:
    (foundation,) = [c for c in contracts() if c["type"] == "forbidden"]
    found = {
        f"stickerq.{path.stem}"
        for path in (ROOT / "stickerq").iterdir()
        if path.stem not in DOMAIN_AND_INTERFACES | {"__init__", "__main__", "__pycache__"}
    }
    assert found | {"stickerq.migrations"} == set(foundation["source_modules"])


def test_the_contracts_hold() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_producer_importing_the_worker_breaks_a_contract(tmp_path: Path) -> None:
    copy = tmp_path / "checkout"
    for name in ("stickerq", "producer", "worker", "migrations", "scripts"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    store = copy / "producer" / "store.py"
    store.write_text(store.read_text() + "\nfrom stickerq.worker import claims  # noqa\n")
    done = lint(copy)
    assert done.returncode != 0
    assert "stickerq.producer.store -> stickerq.worker.claims" in done.stdout
