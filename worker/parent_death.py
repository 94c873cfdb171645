"""A worker's children end with it: its prefork pool processes and the beat of `--beat`.

A worker killed with SIGKILL (the OOM killer, `kill -9`) runs no shutdown code, and its
children pass to init. Celery has the kernel kill each pool process when its parent dies
(PR_SET_PDEATHSIG), but not the embedded beat process, which went on publishing the
periodic tasks beside the beat of the next worker. So every child asks for that signal as it
starts, then checks that its parent is still the worker: the kernel sends nothing for a
parent that died before the prctl. Off Linux a thread polls the parent's pid instead.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from billiard.util import set_pdeathsig
from celery import signals

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0  # off Linux: how soon a child notices that the worker died
_worker_pid: int | None = None  # set in the worker's main process, inherited by its forks


def end_children_with_worker() -> None:
    """Connect the handlers (again is harmless); call before the worker starts."""
    signals.worker_init.connect(_remember_worker_pid)
    signals.worker_process_init.connect(_end_with_worker)  # a prefork pool process
    signals.beat_embedded_init.connect(_end_with_worker)  # the beat process of --beat, -B


def _remember_worker_pid(**_: Any) -> None:
    global _worker_pid
    _worker_pid = os.getpid()


def _end_with_worker(**_: Any) -> None:
    if os.getpid() != _worker_pid:  # the solo pool sends worker_process_init in the worker
        end_with_parent(_worker_pid)


def end_with_parent(parent: int | None) -> None:
    """End this process when its parent dies, or now if `parent`, the pid it was forked
    from, is gone already (None: not known, as in a child started by spawn)."""
    try:
        # The signal comes when the *thread* that forked this process ends: the worker's
        # main thread, which starts the beat and replaces pool processes (from its hub).
        set_pdeathsig(signal.SIGKILL)
    except OSError:  # not Linux
        watched = os.getppid() if parent is None else parent
        threading.Thread(
            target=_exit_when_orphaned, args=(watched,), name="parent-watch", daemon=True
        ).start()
    if parent is not None and os.getppid() != parent:
        log.warning("the worker (pid %d) died before this process started: exiting", parent)
        os._exit(1)


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os._exit(1)
