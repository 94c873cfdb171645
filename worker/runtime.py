"""Per-process resources of a worker: one event loop thread, one pooled Kaleyra client per
account, one Redis connection pool, one database engine with a few threads for its blocking
calls, the slots for requests in flight, and the batches still finishing after their task
returned.

Celery runs task bodies synchronously; they hand their batch to this process's loop, so
connections stay open across tasks (keep-alive) instead of one loop per task. Every batch
is a coroutine of that loop; their database work shares DATABASE_THREADS threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import gc
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as aioredis
from sqlalchemy.orm import Session, sessionmaker

from stickerq.accounts import Account
from stickerq.db import make_engine, make_session_factory
from stickerq.errors import ConfigurationError
from stickerq.redis_client import Purpose, make_async_redis, make_redis
from stickerq.settings import Settings
from stickerq.suppression_list import phone_hasher
from stickerq.worker.batch_room import BatchRoom
from stickerq.worker.kaleyra import KaleyraClient
from stickerq.worker.leaving import LeavingRecord
from stickerq.worker.limiter import RateLimiter
from stickerq.worker.master_watch import MasterWatch
from stickerq.worker.pairs import PairGuard
from stickerq.worker.retries import RetryPolicy

T = TypeVar("T")
P = ParamSpec("P")
log = logging.getLogger(__name__)

# Claims and result writes of every batch of the process, one short transaction each: two
# threads keep one batch's commit from holding up another's claim. The evidence of what may
# leave (worker/leaving.py) has a thread of its own: every request waits for it.
DATABASE_THREADS = 2


async def in_thread(
    executor: concurrent.futures.Executor, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    call = functools.partial(work, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, call)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (not on Windows): asyncio's own scheduling was a fifth of
    the worker's busy time in py-spy. asyncio's loop elsewhere, a little slower."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.accounts = {account.sid: account for account in check_keys(settings)}
        self.settings = settings
        # Erased suppressed numbers are matched by their keyed hash (None: no key set).
        self.hasher = phone_hasher(settings)
        self.pid = os.getpid()
        self.engine = make_engine(settings.database_url, pool_pre_ping=False)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.redis = make_redis(settings.redis_target, purpose=Purpose.WORKER)
        self.policy = RetryPolicy(
            quick_attempts=settings.quick_attempts,
            quick_backoff_seconds=settings.quick_backoff_seconds,
            delays_seconds=tuple(settings.retry_delays_seconds),
        )
        self._database = concurrent.futures.ThreadPoolExecutor(
            DATABASE_THREADS, thread_name_prefix="stickerq-db"
        )
        self._leaving = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="stickerq-leaving"
        )
        self._loop = new_event_loop()
        self._watch_task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.clients, self.aredis, self.limiter = self.run(self._open_async())
        self.pairs = (  # None: the pair guard is off
            PairGuard(self.aredis, settings.redis_prefix, settings.pair_interval_seconds)
            if settings.pair_interval_seconds > 0
            else None
        )
        self.leaving = LeavingRecord(self.engine, functools.partial(in_thread, self._leaving))
        self.slots = asyncio.Semaphore(settings.in_flight)
        self.batches = BatchRoom(
            settings.batches_per_process, max(1, settings.batches_per_process - 1)
        )
        # What is alive now (Celery, SQLAlchemy, the clients) lives as long as the process:
        # the cyclic GC need not scan it again on every full collection.
        gc.freeze()

    async def _open_async(self) -> tuple[dict[str, KaleyraClient], aioredis.Redis, RateLimiter]:
        s = self.settings
        # One pool per account: the requests in flight stay bounded by `slots`, shared by all.
        clients = {
            account.sid: KaleyraClient(
                base_url=account.url,
                sid=account.sid,
                api_key=account.api_key,
                connect_timeout=s.connect_timeout,
                read_timeout=s.read_timeout,
                max_connections=s.in_flight,
            )
            for account in self.accounts.values()
        }
        aredis = make_async_redis(s.redis_target, purpose=Purpose.WORKER)
        hold: Callable[[], float] | None = None
        if MasterWatch.applies_to(aredis):  # Sentinel: follow a failover, all workers at once
            watch = MasterWatch(aredis, self.redis)
            await watch.check()
            self._watch_task = asyncio.get_running_loop().create_task(watch.run())
            hold = watch.hold_seconds
        return clients, aredis, RateLimiter(aredis, s.redis_prefix, hold=hold)

    def holds(self, sid: str) -> bool:
        """Whether this worker has the key of account `sid`."""
        return sid in self.clients

    def client_for(self, sid: str) -> KaleyraClient:
        """The Kaleyra client of account `sid` (ConfigurationError: not one of ours)."""
        client = self.clients.get(sid)
        if client is None:
            raise ConfigurationError(
                f"this worker holds no key of Kaleyra account {sid}; it holds "
                f"{', '.join(self.clients)}: add the account to its STICKERQ_ACCOUNTS_FILE"
            )
        return client

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this process's loop and wait for its result (from another
        thread: a Celery task's)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def in_database(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking database work in one of the process's database threads (on the loop)."""
        return await in_thread(self._database, work, *args, **kwargs)

    def close(self) -> None:
        async def close_async() -> None:
            # Batches whose task has returned: stop them before their next request, write
            # their results.
            await self.batches.halt_and_wait(self.settings.read_timeout + 30)
            if self._watch_task is not None:
                self._watch_task.cancel()
            for client in self.clients.values():
                await client.aclose()
            await self.aredis.aclose()

        self.run(close_async())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._database.shutdown()
        self._leaving.shutdown()
        self.leaving.close()
        self.redis.close()
        self.engine.dispose()


def check_keys(settings: Settings) -> tuple[Account, ...]:
    """The worker's accounts; it sends on every one, so each needs its key (an error names
    the SID only)."""
    accounts = settings.all_accounts()
    keyless = [account.sid for account in accounts if not account.has_key]
    if not keyless:
        return accounts
    if not settings.lists_accounts:
        raise ConfigurationError(
            "STICKERQ_KALEYRA_API_KEY is not set: the worker cannot authenticate to "
            "Kaleyra. Set it to the API key of account STICKERQ_KALEYRA_SID."
        )
    raise ConfigurationError(
        f"no api_key for Kaleyra account(s) {', '.join(keyless)} in the list of accounts: "
        "the worker cannot authenticate to them. Give each listed account its api_key."
    )


_settings: Settings | None = None
_runtime: Runtime | None = None
_lock = threading.Lock()


def configure(settings: Settings) -> None:
    """Set the settings the worker's runtime is built from (replacing any older runtime)."""
    global _settings, _runtime
    with _lock:
        if _runtime is not None and _runtime.pid == os.getpid():
            _runtime.close()
        _settings, _runtime = settings, None


def current_runtime() -> Runtime:
    """This process's runtime, built on first use (after a prefork child is forked)."""
    global _runtime
    with _lock:
        if _runtime is None or _runtime.pid != os.getpid():
            if _settings is None:
                raise ConfigurationError("the worker was started without settings")
            _runtime = Runtime(_settings)
        return _runtime


def shutdown() -> None:
    """Close this process's runtime, if one was built (tests, embedded workers)."""
    global _runtime
    with _lock:
        if _runtime is not None and _runtime.pid == os.getpid():
            _runtime.close()
        _runtime = None
