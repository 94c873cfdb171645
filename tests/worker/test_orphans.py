"""A worker killed with SIGKILL (the OOM killer, `kill -9`) leaves no child behind: no pool
process, no embedded beat still publishing beside the next worker's (issue 12)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stickerq.settings import Settings
from stickerq.worker.parent_death import POLL_SECONDS
from tests.conftest import make_settings, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

CELERY_WORKER = ["-m", "celery", "-A", "stickerq.worker.celery_app", "worker"]
# (arguments of `python`, children the main process forks: the pool and maybe the beat)
COMMANDS = {
    "stickerq worker --beat": (["-m", "stickerq", "worker", "--beat", "--concurrency", "2"], 3),
    "stickerq worker": (["-m", "stickerq", "worker", "--concurrency", "2"], 2),
    "celery worker -B": ([*CELERY_WORKER, "-B", "--concurrency", "2", "--without-mingle"], 3),
}


def live_group_members(pgid: int) -> dict[int, int]:
    """pid -> parent pid of every process of this group that is not a zombie."""
    members = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # gone meanwhile
            state, ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(pgrp) == pgid and state != "Z":
                members[int(stat.parent.name)] = int(ppid)
    return members


def children_of(pid: int) -> list[int]:
    return [child for child, parent in live_group_members(pid).items() if parent == pid]


@pytest.fixture
def settings(sqlite_database: str, redis_prefix: str) -> Settings:
    # nothing is sent: the Kaleyra URL is never asked
    return make_settings(
        sqlite_database, redis_prefix, "http://127.0.0.1:9", dispatch_interval_seconds=1.0
    )


@pytest.fixture
def own_group(settings: Settings, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Started processes lead groups of their own; whatever is left of a group is killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.mark.parametrize("command", COMMANDS)
def test_sigkill_of_the_main_process_leaves_no_child(
    command: str,
    settings: Settings,
    own_group: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    args, children = COMMANDS[command]
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, *args, "--loglevel", "INFO"],
            env={**os.environ, **settings.as_environment()},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    own_group.append(worker)
    wait_until(lambda: "ready." in log.read_text(), timeout=60, interval=0.1)
    wait_until(lambda: len(children_of(worker.pid)) == children, timeout=30, interval=0.1)

    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)

    try:
        wait_until(lambda: not live_group_members(worker.pid), timeout=10, interval=0.1)
    except AssertionError:
        left = live_group_members(worker.pid)
        pytest.fail(f"{command}: still running 10 s after SIGKILL of its main process: {left}")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )


def test_a_child_whose_worker_died_before_it_started_exits_at_once() -> None:
    # pid 1 stands for the worker: this process's parent is another, as if re-parented
    done = run_python(
        "from stickerq.worker.parent_death import end_with_parent\n"
        "end_with_parent(1)\n"
        "print('still running')"
    )
    assert done.returncode == 1 and "still running" not in done.stdout


def test_without_prctl_a_thread_ends_the_child_when_its_parent_dies(
    own_group: list[subprocess.Popen[bytes]],
) -> None:
    """Off Linux: the parent forks a child that watches it, then exits."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, time\n"
            "from stickerq.worker import parent_death\n"
            "def no_prctl(sig): raise OSError('not Linux')\n"
            "parent_death.set_pdeathsig = no_prctl\n"
            "parent = os.getpid()\n"
            "if os.fork() == 0:\n"
            "    parent_death.end_with_parent(parent)\n"
            "    time.sleep(60)\n"
            "else:\n"
            "    time.sleep(2)\n",
        ],
        start_new_session=True,
    )
    own_group.append(parent)
    wait_until(lambda: len(live_group_members(parent.pid)) == 2, timeout=20)
    parent.wait(timeout=20)
    wait_until(lambda: not live_group_members(parent.pid), timeout=3 * POLL_SECONDS)
