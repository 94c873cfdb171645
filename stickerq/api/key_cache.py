"""The database's API keys as the guard sees them: found by hash, remembered a few seconds.

The cost of a database key: one indexed lookup (and, at most once a minute, a write of its
last use, producer/api_keys.py) per key and process every TTL_SECONDS, not per request;
a request that finds its key here touches no database. The price is the bound on a change:
a key revoked (or expired, which is checked on every hit) is refused by every API process
within TTL_SECONDS. Unknown keys are remembered too, so a client retrying a wrong key costs a
lookup per TTL; the guard's failure throttle still counts each of its requests. Only the
hash is kept here, never a key.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from stickerq.api.auth import Token
from stickerq.models import utcnow
from stickerq.producer.api_keys import KEY_PREFIX, KeyInfo, hash_key, usable_key
from stickerq.settings import Settings

TTL_SECONDS = 5.0  # the longest a revoked key still opens a request of one process
MAX_ENTRIES = 4096  # the oldest are dropped first: wrong keys sent in bulk cannot grow it


@dataclass(frozen=True, slots=True)
class _Entry:
    info: KeyInfo | None
    read_at: float


class KeyCache:
    """Thread-safe: the guard reads it on the event loop, the dashboard's sessions in
    threads. A miss reads the database (in a thread when asked from the loop)."""

    def __init__(
        self,
        settings: Settings,
        ttl: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings, self.ttl, self._clock = settings, ttl, clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    async def find(self, presented: str) -> Token | None:
        """The token of a usable database key, or None; no lookup for what is not a key."""
        if not presented.startswith(KEY_PREFIX):
            return None
        key_hash = hash_key(presented)
        entry = self._fresh(key_hash)
        if entry is None:
            entry = await run_in_threadpool(self._load, key_hash)
        return _token(entry.info)

    def find_by_hash(self, key_hash: str) -> Token | None:
        """As find, by the key's hash (a dashboard session keeps it); blocks on a miss."""
        entry = self._fresh(key_hash) or self._load(key_hash)
        return _token(entry.info)

    def _fresh(self, key_hash: str) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key_hash)
            if entry is None or self._clock() - entry.read_at >= self.ttl:
                return None
            return entry

    def _load(self, key_hash: str) -> _Entry:
        entry = _Entry(usable_key(self.settings, key_hash), self._clock())
        with self._lock:
            self._entries[key_hash] = entry
            self._entries.move_to_end(key_hash)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
        return entry


def _token(info: KeyInfo | None) -> Token | None:
    if info is None or not info.usable(utcnow()):  # expired since it was read
        return None
    return Token(b"", info.scope, info.name, info.account)
