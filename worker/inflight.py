"""What a claim sent, kept in Redis so that a dead worker's `sending` rows can be settled.

Each claim has a token. Before its messages are claimed in the database, Redis gets
`claim:T` (a heartbeat with a short TTL, refreshed while the batch runs) and `sent:T` (a set
holding a sentinel). The limiter script adds a message to `sent:T` in the same atomic step
that grants its token, and refuses when `sent:T` is gone (Redis lost its state) or `dead:T`
exists. The sweeper settles a claim whose heartbeat stopped by first writing `dead:T`
(atomically with reading `sent:T`), so the set it reads is final: messages in it may have
left (`unknown`), the others provably did not (`pending`). A lost set proves nothing by itself:
then the database's own evidence decides (worker/leaving.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass

import redis
import redis.asyncio as aioredis

from stickerq.keys import claim_key

# Long enough for a sweeper to run after any outage we would still call an outage.
SENT_SET_TTL_SECONDS = 7 * 24 * 3600
SENTINEL = "-"
CLAIM_TOKEN_BYTES = 12


@dataclass(frozen=True, slots=True)
class ClaimKeys:
    token: str
    alive: str
    sent: str
    dead: str


def new_claim(prefix: str) -> ClaimKeys:
    return claim_keys(prefix, new_claim_token())


def new_claim_token() -> str:
    """96 random bits in 16 characters, where a uuid's hex took 32: a claimed row holds its
    token twice (the claim and the leaving mark) until its result is written."""
    return secrets.token_urlsafe(CLAIM_TOKEN_BYTES)


def claim_keys(prefix: str, token: str) -> ClaimKeys:
    base = claim_key(prefix, token)
    return ClaimKeys(token=token, alive=base, sent=f"{base}:sent", dead=f"{base}:dead")


async def open_claim(client: aioredis.Redis, keys: ClaimKeys, ttl: float) -> None:
    """Before the database claim: a heartbeat (lives `ttl` seconds) and an empty record."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.set(keys.alive, 1, px=int(ttl * 1000))
        pipe.sadd(keys.sent, SENTINEL)
        pipe.expire(keys.sent, SENT_SET_TTL_SECONDS)
        await pipe.execute()


async def beat_forever(client: aioredis.Redis, keys: ClaimKeys, ttl: float) -> None:
    """Keep the claim alive until cancelled (while the batch sends and writes its results)."""
    while True:
        await asyncio.sleep(ttl / 3)
        with contextlib.suppress(redis.RedisError):
            await client.set(keys.alive, 1, px=int(ttl * 1000))


async def forget_sent(client: aioredis.Redis, keys: ClaimKeys, message_pks: list[int]) -> None:
    """These messages' results are in the database: the sweeper need not guess about them."""
    await client.srem(keys.sent, *(str(pk) for pk in message_pks))


async def close_claim(client: aioredis.Redis, keys: ClaimKeys) -> None:
    """After the results are in the database the record is no longer needed."""
    with contextlib.suppress(redis.RedisError):
        await client.delete(keys.alive, keys.sent)


# KEYS: alive, sent, dead. Returns {1} while the claim is alive; else marks it dead and
# returns {0, 1, members...} when the record of sends exists, {0, 0} when it was lost.
_SETTLE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {1} end
redis.call('SET', KEYS[3], 1, 'EX', tonumber(ARGV[1]))
if redis.call('EXISTS', KEYS[2]) == 0 then return {0, 0} end
local result = {0, 1}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do table.insert(result, member) end
return result
"""


@dataclass(frozen=True, slots=True)
class ClaimVerdict:
    alive: bool
    record_kept: bool = False
    sent: frozenset[int] = frozenset()


def settle_claim(client: redis.Redis, keys: ClaimKeys) -> ClaimVerdict:
    """For the sweeper: is the claim alive; if not, stop it for good and say what it sent."""
    reply = client.eval(_SETTLE, 3, keys.alive, keys.sent, keys.dead, SENT_SET_TTL_SECONDS)
    if int(reply[0]) == 1:
        return ClaimVerdict(alive=True)
    members = {m.decode() if isinstance(m, bytes) else str(m) for m in reply[2:]}
    members.discard(SENTINEL)
    return ClaimVerdict(
        alive=False, record_kept=bool(int(reply[1])), sent=frozenset(int(m) for m in members)
    )
