"""Normalising many phone numbers: in chunks, spread over the machine's cores for big lists.

phonenumbers' parse and validity check are most of an enqueue's CPU (about 60 µs a number,
a minute for a million), so a list longer than one chunk has its later chunks normalised in
other processes while this one reads the file and streams the rows into the database. The
results come back in file order, and at most a few chunks are in flight, so memory stays
flat in the number of rows.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

from stickerq.producer.spec import InvalidPhone, normalise_phone

CHUNK_ROWS = 5_000  # one chunk of work for a process; a list this short stays in-process
T = TypeVar("T")
# Per row: the E.164 number, or why the raw value is not one.
Normalised = str | InvalidPhone


def normalise_all(raws: list[str], region: str | None) -> tuple[list[str | None], dict[int, str]]:
    """The chunk's numbers in E.164 (None where invalid) and the reasons, by position.

    Plain strings and a dict, not exceptions: they cross a process boundary.
    """
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

    The first chunk is normalised here; if more follow, a pool of `processes` (default: the
    usable cores) takes them, `processes + 1` chunks ahead of the reader at most.
    """
    chunks = _chunks(iter(rows))
    first = next(chunks, None)
    if first is None:
        return
    yield from _joined(first, normalise_all([raw for raw, _ in first], region))
    second = next(chunks, None)
    if second is None:
        return
    workers = processes or _usable_cores()
    if workers < 2 or sys.platform != "linux":
        for chunk in itertools.chain([second], chunks):
            yield from _joined(chunk, normalise_all([raw for raw, _ in chunk], region))
        return
    # fork: spawn and forkserver would run the caller's __main__ again in every child. The
    # children only run normalise_all and leave with os._exit, so the parent's open database
    # connection and threads are never touched in them.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[tuple[list[tuple[str, T]], Future]] = deque()
        for chunk in itertools.chain([second], chunks):
            pending.append((chunk, pool.submit(normalise_all, [raw for raw, _ in chunk], region)))
            if len(pending) > workers:
                done, future = pending.popleft()
                yield from _joined(done, future.result())
        while pending:
            done, future = pending.popleft()
            yield from _joined(done, future.result())


def _joined(
    chunk: list[tuple[str, T]], result: tuple[list[str | None], dict[int, str]]
) -> Iterator[tuple[str, T, Normalised]]:
    phones, reasons = result
    for index, ((raw, extra), phone) in enumerate(zip(chunk, phones, strict=True)):
        yield raw, extra, phone if phone is not None else InvalidPhone(reasons[index])


def _chunks(rows: Iterator[tuple[str, T]]) -> Iterator[list[tuple[str, T]]]:
    while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
        yield chunk


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
