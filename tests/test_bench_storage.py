"""bench/storage.py runs at a tiny size and prints its tables (the figures themselves are for
docs/performance.md; none of them is held to a bound here but one that does not vary)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import PG_ADMIN_URL, REDIS_URL

ROOT = Path(__file__).resolve().parent.parent


def test_the_storage_bench_prints_bytes_per_message_before_and_after(tmp_path: Path) -> None:
    figures = tmp_path / "storage.json"
    done = subprocess.run(
        [sys.executable, "bench/storage.py", "--recipients", "200", "--json", str(figures)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "STICKERQ_BENCH_PG_URL": PG_ADMIN_URL,
            "STICKERQ_BENCH_REDIS_URL": REDIS_URL,
        },
    )
    assert done.returncode == 0, done.stderr
    for backend in ("postgresql", "sqlite"):
        assert f"{backend}: bytes per message, 200 recipients" in done.stdout
        assert f"{backend}: each index, bytes per message" in done.stdout
    assert "messages heap" in done.stdout and "attempts total" in done.stdout
    kept = json.loads(figures.read_text())
    # SQLite lays the same rows out the same way every time: a settled message's row
    # without its claim tokens is smaller, whatever the machine.
    sqlite = kept["sqlite"]
    assert (
        sqlite["after"]["bytes"]["messages"]["heap"] < sqlite["before"]["bytes"]["messages"]["heap"]
    )
    assert kept["postgresql"]["after"]["filled"]["messages"] == 200
