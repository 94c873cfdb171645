"""The periodic tasks' routine log lines at DEBUG, not INFO.

Beat sends three tasks every few seconds, and Celery logs each one sent, received and
succeeded at INFO: six lines every 2 s from an idle worker, burying the lines that matter.
Their warnings and errors (a failed task, a sweeper settling a dead claim) stay as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

# Celery's loggers of "Sending due task", "Task ... received" and "Task ... succeeded".
ROUTINE_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")


class PeriodicTasksAtDebug(logging.Filter):
    def __init__(self, tasks: Iterable[str]) -> None:
        super().__init__()
        # "Task NAME[id] received / succeeded", "Sending due task ENTRY (NAME)"
        self.marks = tuple(mark for task in tasks for mark in (f"{task}[", f"({task})"))

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        message = record.getMessage()
        if not any(mark in message for mark in self.marks):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_periodic_tasks(tasks: Iterable[str]) -> None:
    """Install the filter on Celery's loggers (forked pool and beat processes inherit it)."""
    tasks = tuple(tasks)
    for name in ROUTINE_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, PeriodicTasksAtDebug)]:
            logger.removeFilter(old)
        logger.addFilter(PeriodicTasksAtDebug(tasks))
