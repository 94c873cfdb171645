"""The stickerq package laid out as a wheel installs it, made of symlinks into a checkout.

In the repository, stickerq.producer, stickerq.worker and stickerq.migrations live in the
top-level folders producer/, worker/ and migrations/ (pyproject's package-dir). Tools that
find a package's modules by walking its folder (import-linter) and runs that must import
one checkout's code rather than the installed one (benchmarks of an older commit) use this
layout instead, put first on PYTHONPATH (and MYPYPATH, for mypy).

    python scripts/staged_tree.py [--root CHECKOUT] -- COMMAND ...   # run COMMAND with it
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MAPPED = {"producer": "producer", "worker": "worker", "migrations": "migrations"}


def stage(root: Path, into: Path) -> Path:
    """Build `into`/stickerq from the checkout at `root`; returns `into` (for PYTHONPATH)."""
    package = into / "stickerq"
    package.mkdir(parents=True)
    for entry in (root / "stickerq").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry.resolve())
    for name, folder in MAPPED.items():
        (package / name).symlink_to((root / folder).resolve())
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stickerq-staged-") as folder:
        path = stage(args.root, Path(folder))
        search = os.pathsep.join(filter(None, [str(path), os.environ.get("PYTHONPATH")]))
        env = dict(os.environ, PYTHONPATH=search, MYPYPATH=str(path))
        return subprocess.run(args.command, env=env, cwd=folder).returncode


if __name__ == "__main__":
    sys.exit(main())
