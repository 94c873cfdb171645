"""Fixtures for the fault tests: tight sweeper settings and killable worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stickerq.settings import Settings


@pytest.fixture
def fault_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "batch_size": 100,
            "in_flight": 20,
            "claim_heartbeat_seconds": 2.0,
            "sweep_interval_seconds": 1.0,
            "dispatch_interval_seconds": 1.0,
            "retry_delays_seconds": [0.2, 0.2, 0.2, 0.2],
            # These tests count exact outcomes: an answer the loaded machine (the sandbox is
            # a thread of the test's process) delays past the 1 s of the other tests would be
            # a read timeout, an `unknown` (measured: 16-60 of 2,000 beside two busy cores).
            "read_timeout": 10.0,
        }
    )


class Workers:
    """`stickerq worker` processes in their own process groups, so SIGKILL takes the pool too."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, settings: Settings, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp_path / f"worker-{len(self.processes)}.log").open("wb")
        # STICKERQ_TEST_WORKER_LOGLEVEL=DEBUG keeps Celery's own account of every task in
        # the log under the test's tmp_path (pytest --basetemp=DIR keeps it)
        loglevel = ["--loglevel", os.environ.get("STICKERQ_TEST_WORKER_LOGLEVEL", "INFO")]
        process = subprocess.Popen(
            [sys.executable, "-m", "stickerq", "worker", "--concurrency", "1", *loglevel, *args],
            env={**os.environ, **settings.as_environment()},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        """SIGKILL: the test is over, and a warm shutdown took 1-3 s of every test's teardown
        (what a warm shutdown must do is tested in test_faults.py)."""
        for process in self.processes:
            if process.poll() is None:
                self.kill(process)


@pytest.fixture
def workers(tmp_path: Path, redis_prefix: str) -> Iterator[Workers]:
    """Depends on redis_prefix so that the workers stop before the prefix's keys go."""
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()
