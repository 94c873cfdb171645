"""Group commit of callbacks: what many requests hand in goes in one transaction.

Status callbacks (`StatusCallback`) and incoming-message callbacks (`Inbound`, for the window
ledger) share the one writer: a request hands in either kind.

A request hands its parsed callbacks to `CallbackWriter.write` and waits. One thread takes
everything handed in since its last commit (up to `max_batch` requests), applies it with
`apply_callbacks` in one transaction, commits, and only then ends each request's wait. So an
answer means the callback is in the database: nothing acknowledged is lost when the process
dies or the database restarts. While the database cannot be reached the thread tries the
same batch again with capped backoff; a request that gave up waiting (503) still gets its
callbacks written once the database is back, and Kaleyra's retry of it is a duplicate, which
changes nothing.

A request whose callbacks the database refuses (DataError, IntegrityError, text no driver
encodes: a value it will refuse however often it is sent) is not tried again: its wait ends
with CallbacksRefused, naming which of its callbacks the database refuses alone, and nothing
of that request is written. The other requests of its batch are written one request at a
time, so one bad request never fails another. Anything else (the schema missing, a bug) ends
the wait with CallbacksNotWritten: try again later.

Under load the batches grow by themselves (whatever arrived during one commit goes in the
next), so there is no timer to tune: a lone callback is written at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from stickerq.errors import StickerqError
from stickerq.metrics import count_replaced_times
from stickerq.models import utcnow
from stickerq.producer.callback_payloads import StatusCallback
from stickerq.producer.callbacks import Applied, apply_callbacks
from stickerq.producer.unknown_callbacks import apply_unknown
from stickerq.window_ledger import Inbound, record_inbound

Received = StatusCallback | Inbound

log = logging.getLogger(__name__)

MAX_BATCH = 500  # requests per transaction
MAX_BACKLOG = 50_000  # requests waiting; past it new ones are refused at once
RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS = 0.05, 2.0
RECHECK_SECONDS = 2.0  # how often early (unknown) callbacks are tried again ...
RECHECK_WINDOW = timedelta(minutes=15)  # ... and for how long after they arrived


class CallbacksNotWritten(StickerqError):
    """The callbacks could not be written in time (database unreachable) or at all."""


class CallbacksRefused(StickerqError):
    """The database refuses these callbacks, and would every time: `indexes` are those it
    refuses alone (positions in the request); nothing of the request was written."""

    def __init__(self, message: str, indexes: list[int]) -> None:
        super().__init__(message)
        self.indexes = indexes


@dataclass(slots=True)
class _Waiting:
    callbacks: Sequence[Received]
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[None] = field(repr=False)


def _unreachable(exc: BaseException) -> bool:
    """The database is down, restarting or locked: the batch is tried again."""
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def _refused(exc: BaseException) -> bool:
    """The database will never take these values, however often it is asked."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    cause = exc.orig if isinstance(exc, StatementError) else exc
    return isinstance(cause, UnicodeError)  # a lone surrogate: no driver encodes it


def _why(exc: BaseException) -> str:
    """The database's words, first line, as ASCII (a refused value may not encode)."""
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    line = (str(cause).strip().splitlines() or [""])[0][:200]
    return f"{type(cause).__name__}: {line}".encode("ascii", "backslashreplace").decode()


class CallbackWriter:
    """`await writer.write(callbacks)` returns once they are committed; `close()` drains."""

    def __init__(self, sessions: sessionmaker[Session], *, max_batch: int = MAX_BATCH) -> None:
        self._sessions = sessions
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._recheck_until = 0.0  # monotonic time; set while unknown callbacks are recent
        self._rechecked_at = 0.0

    async def write(self, callbacks: Sequence[Received], timeout: float) -> None:
        """Wait until the callbacks are committed; CallbacksNotWritten after `timeout`."""
        self._start()
        if self._queue.qsize() >= MAX_BACKLOG:
            raise CallbacksNotWritten("too many callbacks wait for the database")
        loop = asyncio.get_running_loop()
        waiting = _Waiting(callbacks, loop, loop.create_future())
        # a timer, not asyncio.wait_for: a tenth of the receiver's CPU went to wait_for's
        # wrapping at 3,000 callbacks/s. Giving up leaves the callbacks to be written anyway.
        timer = loop.call_later(timeout, _expire, waiting.done, timeout)
        self._queue.put(waiting)
        try:
            await waiting.done
        finally:
            timer.cancel()

    def close(self, timeout: float = 10.0) -> None:
        """Write what was handed in, then stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._closed:
                raise CallbacksNotWritten("the callback writer is closed")
            if self._thread is None:
                self._recheck_until = time.monotonic() + RECHECK_WINDOW.total_seconds()
                self._thread = threading.Thread(
                    target=self._run, name="stickerq-callback-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=RECHECK_SECONDS)
            except queue.Empty:
                self._recheck_unknown()
                continue
            batch, stop = self._gather(first)
            if batch:
                self._commit(batch)
            self._recheck_unknown()
            if stop:
                return

    def _gather(self, first: _Waiting | None) -> tuple[list[_Waiting], bool]:
        """`first` and whatever else waits, up to max_batch; True at the closing marker."""
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _commit(self, batch: list[_Waiting]) -> None:
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                self._apply([c for waiting in batch for c in waiting.callbacks])
            except Exception as exc:
                if _unreachable(exc):
                    log.warning("callbacks wait for the database (%s); again in %.2fs",
                                type(exc).__name__, delay)  # fmt: skip
                    time.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_SECONDS)
                    continue
                if len(batch) > 1:  # one bad request must not fail the others: one by one
                    for waiting in batch:
                        self._commit([waiting])
                    return
                if _refused(exc):
                    _settle(batch, self._refusal(batch[0].callbacks, exc))
                    return
                log.exception("a callback could not be written")
                _settle(batch, CallbacksNotWritten("the callback could not be written"))
                return
            _settle(batch, None)
            return

    def _apply(self, callbacks: list[Received]) -> None:
        with self._sessions.begin() as session:
            applied = apply_received(session, callbacks)
        _count(applied)  # after the commit: a batch tried again is counted once
        if applied.unknown:
            self._recheck_until = time.monotonic() + RECHECK_WINDOW.total_seconds()

    def _refusal(self, callbacks: Sequence[Received], exc: Exception) -> CallbacksRefused:
        """Which of a refused request's callbacks the database refuses alone: each tried in
        a transaction rolled back (rare: parsing refuses what it knows no database stores)."""
        indexes = []
        for index, callback in enumerate(callbacks):
            try:
                with self._sessions() as session:
                    apply_received(session, [callback])
                    session.rollback()
            except Exception as alone:
                if _refused(alone):
                    indexes.append(index)
        log.warning(
            "the database refused a request of %s callback(s): %s", len(callbacks), _why(exc)
        )
        which = (
            f"callback(s) {', '.join(map(str, indexes))} of this request"
            if indexes
            else "this request's callbacks together (none alone)"
        )
        return CallbacksRefused(
            f"the database refused {which} ({_why(exc)}); nothing of the request was stored: "
            "fix those and send it again",
            indexes,
        )

    def _recheck_unknown(self) -> None:
        now = time.monotonic()
        if now > self._recheck_until or now - self._rechecked_at < RECHECK_SECONDS:
            return
        self._rechecked_at = now
        try:
            with self._sessions.begin() as session:
                applied = apply_unknown(session, since=utcnow() - RECHECK_WINDOW)
        except Exception as exc:  # tried again at the next round
            log.warning("unknown callbacks not checked again: %s", type(exc).__name__)
            return
        _count(applied)


def apply_received(session: Session, callbacks: Sequence[Received]) -> Applied:
    """Record both kinds in the caller's transaction: customers' messages in the ledger,
    statuses on their messages."""
    inbound = [c for c in callbacks if isinstance(c, Inbound)]
    if inbound:
        record_inbound(session, inbound)
    statuses = [c for c in callbacks if isinstance(c, StatusCallback)]
    return apply_callbacks(session, statuses) if statuses else Applied(changed=0, unknown=0)


def _count(applied: Applied) -> None:
    for reason, replaced in applied.times_replaced.items():
        count_replaced_times(reason, replaced)


def _settle(batch: list[_Waiting], error: Exception | None) -> None:
    """End the waits of a batch: one wake-up per event loop, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for waiting in batch:
        by_loop.setdefault(waiting.loop, []).append(waiting.done)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_end, futures, error)


def _expire(future: asyncio.Future[None], timeout: float) -> None:
    if not future.done():
        future.set_exception(
            CallbacksNotWritten(f"the database did not take the callbacks in {timeout}s")
        )


def _end(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
