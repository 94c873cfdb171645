"""The database's evidence of what may have left, written before it leaves.

Redis keeps each claim's record of sends (worker/inflight.py), but a host that dies with its
Redis takes that record along, and the sweeper would then have to call every message of the
claim `unknown`. So before a message's first request under a claim leaves, the database gets
the claim's token in `messages.leaving_claim_token` too (claims.record_leaving). With the
Redis record lost, the sweeper makes `unknown` only the messages so marked: the ones holding
one of the process's in-flight slots at the fault, or answered and not yet written.

Marks of every batch of the process are gathered for GATHER_SECONDS (and while the previous
write runs) and written in one transaction, in a thread of their own, while the requests
wait for their tokens: a mark costs a fraction of a statement, and a request waits for it
only when its token came sooner.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine

from stickerq.worker.claims import record_leaving
from stickerq.worker.outages import until_database_is_back

log = logging.getLogger(__name__)

GATHER_SECONDS = 0.002

# Runs blocking work in one of the runtime's database threads.
InDatabase = Callable[..., Awaitable[Any]]


class LeavingRecord:
    def __init__(self, engine: Engine, in_database: InDatabase) -> None:
        self.engine = engine
        self.in_database = in_database
        self._asked: defaultdict[str, dict[int, asyncio.Future[bool]]] = defaultdict(dict)
        self._writer: asyncio.Task[None] | None = None

    async def may_leave(self, token: str, message_pk: int) -> bool:
        """Record that this message may leave under this claim; False when the claim is no
        longer ours (a sweeper settled it): the message must not be sent."""
        asked = self._asked[token].get(message_pk)
        if asked is None:
            asked = self._asked[token][message_pk] = asyncio.get_running_loop().create_future()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_while_asked())
        return await asked

    async def _write_while_asked(self) -> None:
        while self._asked:
            await asyncio.sleep(GATHER_SECONDS)
            asked, self._asked = self._asked, defaultdict(dict)
            wanted = {token: list(futures) for token, futures in asked.items()}
            try:
                ours = await self.in_database(_record_all, self.engine, wanted)
            except Exception as exc:
                for futures in asked.values():
                    for future in futures.values():
                        if not future.done():  # cancelled: its request stopped first
                            future.set_exception(exc)
                continue
            for token, futures in asked.items():
                for pk, future in futures.items():
                    if not future.done():
                        future.set_result(pk in ours[token])


@until_database_is_back
def _record_all(engine: Engine, wanted: dict[str, list[int]]) -> dict[str, set[int]]:
    with engine.begin() as connection:
        return {token: record_leaving(connection, token, pks) for token, pks in wanted.items()}
