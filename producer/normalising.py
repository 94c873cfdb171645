"""Normalising many phone numbers: in chunks, spread over the machine's cores for big lists.

phonenumbers' parse and validity check are most of an enqueue's CPU (about 60 µs a number,
a minute for a million), so a list longer than one chunk has its later chunks normalised by
helper processes while this one reads the file and streams the rows into the database. The
results come back in file order, one chunk in flight per helper, so memory stays flat in
the number of rows.

The helpers are plain `python -m stickerq.producer.normalising` processes that read chunks
on stdin and answer on stdout (a JSON line each), not a multiprocessing pool: a forked child
inherits the caller's threads and connections (kombu's after-fork hook closed the caller's
broker connection from inside such a child, and hung), and spawn or forkserver run the
caller's `__main__` again in every child. A helper that fails is dropped, and its chunks
are normalised here.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

from stickerq.producer.phones import InvalidPhone, normalise_phone

log = logging.getLogger(__name__)

CHUNK_ROWS = 5_000  # one chunk of work for a helper; a list this short stays in-process
T = TypeVar("T")
# Per row: the E.164 number, or why the raw value is not one.
Normalised = str | InvalidPhone
# A chunk's numbers in E.164 (None where invalid) and the reasons, by position.
ChunkResult = tuple[list[str | None], dict[int, str]]


def normalise_all(raws: list[str], region: str | None) -> ChunkResult:
    phones: list[str | None] = []
    reasons: dict[int, str] = {}
    for index, raw in enumerate(raws):
        try:
            phones.append(normalise_phone(raw, region))
        except InvalidPhone as exc:
            phones.append(None)
            reasons[index] = exc.reason
    return phones, reasons


def normalised(
    rows: Iterable[tuple[str, T]], region: str | None, processes: int | None = None
) -> Iterator[tuple[str, T, Normalised]]:
    """(raw, extra) pairs in, (raw, extra, E.164 or InvalidPhone) out, in the same order.

    The first chunk is normalised here; if more follow, `processes` helpers (default: the
    usable cores) take them.
    """
    chunks = _chunks(iter(rows))
    first = next(chunks, None)
    if first is None:
        return
    yield from _joined(first, normalise_all(_raws(first), region))
    second = next(chunks, None)
    if second is None:
        return
    rest = itertools.chain([second], chunks)
    workers = processes or _usable_cores()
    if workers < 2:
        for chunk in rest:
            yield from _joined(chunk, normalise_all(_raws(chunk), region))
        return
    helpers = [_Helper(region) for _ in range(workers)]
    # Chunks go round the helpers and come back in the order sent, so when every helper
    # holds one, the oldest is with the helper whose turn is next.
    turns = itertools.cycle(helpers)
    try:
        pending: deque[tuple[list[tuple[str, T]], _Helper]] = deque()
        for chunk in rest:
            if len(pending) == workers:
                yield from _take(pending.popleft(), region)
            helper = next(turns)
            helper.send(_raws(chunk))
            pending.append((chunk, helper))
        while pending:
            yield from _take(pending.popleft(), region)
    finally:
        for helper in helpers:
            helper.close()


def _take(
    sent: tuple[list[tuple[str, T]], _Helper], region: str | None
) -> Iterator[tuple[str, T, Normalised]]:
    chunk, helper = sent
    result = helper.receive()
    if result is None:  # the helper failed: this chunk, at least, is done here
        result = normalise_all(_raws(chunk), region)
    yield from _joined(chunk, result)


class _Helper:
    """One helper process; `failed` once it cannot be used (then it is asked nothing more)."""

    def __init__(self, region: str | None) -> None:
        self.failed = False
        self.process: subprocess.Popen[str] | None = None
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, region or ""],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
        except OSError as exc:
            self._fail(f"cannot start ({exc})")

    def send(self, raws: list[str]) -> None:
        if self.failed:
            return
        assert self.process is not None  # else failed
        try:
            stdin = self._pipe(self.process.stdin)
            stdin.write(json.dumps(raws) + "\n")
            stdin.flush()
        except OSError as exc:
            self._fail(f"cannot be written to ({exc})")

    def receive(self) -> ChunkResult | None:
        if self.failed:
            return None
        assert self.process is not None  # else failed
        line = self._pipe(self.process.stdout).readline()
        if not line:
            self._fail(f"ended with exit code {self.process.poll()}")
            return None
        phones, reasons = json.loads(line)
        return phones, {int(index): reason for index, reason in reasons.items()}

    def close(self) -> None:
        if self.process is None:
            return
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):  # a helper gone with input unread
                    pipe.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def _fail(self, what: str) -> None:
        self.failed = True
        log.warning("a phone-number helper process %s; normalising its chunks here", what)

    @staticmethod
    def _pipe(pipe: IO[str] | None) -> IO[str]:
        assert pipe is not None  # opened with PIPE
        return pipe


def _joined(chunk: list[tuple[str, T]], result: ChunkResult) -> Iterator[tuple[str, T, Normalised]]:
    phones, reasons = result
    for index, ((raw, extra), phone) in enumerate(zip(chunk, phones, strict=True)):
        yield raw, extra, phone if phone is not None else InvalidPhone(reasons[index])


def _raws(chunk: list[tuple[str, T]]) -> list[str]:
    return [raw for raw, _ in chunk]


def _chunks(rows: Iterator[tuple[str, T]]) -> Iterator[list[tuple[str, T]]]:
    while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
        yield chunk


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _serve(region: str | None) -> None:
    """A helper: one JSON list of raw numbers per line in, one ChunkResult line out."""
    for line in sys.stdin:
        sys.stdout.write(json.dumps(normalise_all(json.loads(line), region)) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve(sys.argv[1] or None)
