"""The built wheel: every import name under stickerq, the migrations inside it, so a folder
of the user's own called `migrations` cannot shadow ours."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=240, **kwargs
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_wheel_installs_under_stickerq_and_upgrades_beside_an_unrelated_migrations(
    tmp_path: Path,
) -> None:
    source = tmp_path / "source"  # setuptools builds in the source folder: not in ours
    for name in ("stickerq", "producer", "worker", "migrations"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = run(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist", source
    )
    assert "Warning" not in built.stdout + built.stderr  # license as SPDX, data folders listed
    (wheel,) = (tmp_path / "dist").glob("stickerq-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"stickerq"}
    assert "stickerq/api/dashboard/templates/page.html" in names
    assert any(name.startswith("stickerq/api/dashboard/static/") for name in names)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        bin_dir / "python",
        "install",
        "-q",
        "--no-deps",
        wheel,
    )
    # The dependencies come from this venv's site-packages, added as a plain path: its .pth
    # files (our editable install among them) are not read from there.
    fresh_site = run(
        bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"
    )
    Path(fresh_site.stdout.strip(), "dependencies.pth").write_text(sysconfig.get_path("purelib"))

    work = tmp_path / "someone-elses-project"
    (work / "migrations").mkdir(parents=True)
    (work / "migrations" / "__init__.py").write_text("raise ImportError('not stickerq')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STICKERQ_", "PYTHON"))}
    env["STICKERQ_DATABASE_URL"] = f"sqlite:///{work / 'stickerq.db'}"
    where = run(
        bin_dir / "python",
        "-c",
        "import stickerq.migrations as m; print(m.__file__)",
        cwd=work,
        env=env,
    )
    assert where.stdout.strip().startswith(fresh_site.stdout.strip())
    run(bin_dir / "stickerq", "db", "upgrade", cwd=work, env=env)
    with sqlite3.connect(work / "stickerq.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"campaigns", "messages", "campaign_counts"} <= tables
