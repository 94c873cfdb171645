"""The worker's event loop: uvloop where installed, asyncio's own where not (Windows)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from stickerq.worker.runtime import new_event_loop


def test_the_loop_is_uvloop_where_it_is_installed() -> None:
    loop = new_event_loop()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


def test_without_uvloop_the_worker_runs_on_asyncios_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    loop = new_event_loop()
    try:
        assert type(loop).__module__.startswith("asyncio")
        assert loop.run_until_complete(asyncio.sleep(0, result=42)) == 42
    finally:
        loop.close()
