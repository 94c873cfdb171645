"""The global rate limiter on the real Redis: window bounds, sharing, pauses, fail closed."""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from stickerq.worker.limiter import WAITING_PER_SENDER, Grant, RateLimiter, burst_tokens

T = TypeVar("T")
SENDER = "+919812345678"
OTHER_SENDER = "+919800000001"


def run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(make())


def client_for(url: str) -> aioredis.Redis:
    # No retries inside redis-py: the limiter's own backoff is what is under test.
    return aioredis.Redis.from_url(
        url, socket_connect_timeout=0.5, socket_timeout=2.0, retry=Retry(NoBackoff(), 0)
    )


def max_in_window(stamps: list[float], width: float = 1.0) -> int:
    """The most grants in any sliding window of `width` seconds."""
    stamps = sorted(stamps)
    best = low = 0
    for high, stamp in enumerate(stamps):
        while stamp - stamps[low] >= width:
            low += 1
        best = max(best, high - low + 1)
    return best


def window_limit(rate: float) -> float:
    return rate * 1.05 + 1


async def hammer(
    limiter: RateLimiter,
    sender: str,
    rate: float,
    until: float,
    tasks: int,
    clock: Callable[[], float] = time.monotonic,
) -> list[float]:
    """Many concurrent takers until `until`: the time of every token granted."""
    stamps: list[float] = []

    async def taker() -> None:
        while clock() < until:
            granted = await limiter.take(sender, rate)
            stamps.extend([clock()] * granted)

    await asyncio.gather(*(taker() for _ in range(tasks)))
    return stamps


def check_rate(stamps: list[float], start: float, end: float, rate: float) -> tuple[int, float]:
    """Assert the window bound and the mean rate; return both figures."""
    busiest = max_in_window(stamps)
    mean = sum(1 for stamp in stamps if stamp <= end) / (end - start)
    print(f"rate {rate}/s: max in a 1 s window {busiest}, mean {mean:.2f}/s")
    assert busiest <= window_limit(rate)
    assert mean >= 0.95 * rate
    return busiest, mean


@pytest.mark.serial  # counts grants per second
def test_concurrent_takers_stay_within_rate_in_every_second(redis_url: str, redis_prefix: str):
    rate, duration = 50.0, 3.0

    async def scenario() -> tuple[list[float], float]:
        client = client_for(redis_url)
        try:
            start = time.monotonic()
            stamps = await hammer(
                RateLimiter(client, redis_prefix), SENDER, rate, start + duration, 40
            )
            return stamps, start
        finally:
            await client.aclose()

    stamps, start = run(scenario)
    check_rate(stamps, start, start + duration, rate)


@pytest.mark.serial  # counts grants per second
def test_bucket_after_idle_holds_no_second_of_tokens(redis_url: str, redis_prefix: str):
    # A full bucket plus its refill would give 2 * rate - 1 in the second after the pause.
    rate = 20.0

    async def scenario() -> list[float]:
        client = client_for(redis_url)
        try:
            limiter = RateLimiter(client, redis_prefix)
            first = await hammer(limiter, SENDER, rate, time.monotonic() + 1.0, 10)
            await asyncio.sleep(0.5)  # long enough to refill any bucket of up to 10 tokens
            second = await hammer(limiter, SENDER, rate, time.monotonic() + 1.0, 10)
            return first + second
        finally:
            await client.aclose()

    stamps = run(scenario)
    print(f"after idle: max in a 1 s window {max_in_window(stamps)}")
    # Stamps are taken in this process after each answer's trip back from Redis: a busy loop
    # that hands the first burst over late squeezes one more grant into a 1 s window here,
    # hence the same 5 % margin as the other window tests; a whole second of bucket gives 39.
    assert max_in_window(stamps) <= window_limit(rate) < 2 * rate - 1


def _process_takes(
    redis_url: str, prefix: str, rate: float, start_at: float, duration: float
) -> tuple[float, list[float]]:
    """One worker process: wait for the common start, then take as fast as allowed."""

    async def main() -> tuple[float, list[float]]:
        client = client_for(redis_url)
        try:
            limiter = RateLimiter(client, prefix)
            await asyncio.sleep(max(0.0, start_at - time.time()))
            began = time.time()
            stamps = await hammer(limiter, SENDER, rate, start_at + duration, 10, time.time)
            return began, stamps
        finally:
            await client.aclose()

    return asyncio.run(main())


@pytest.mark.serial  # counts grants per second
def test_processes_share_one_limit_per_sender(redis_url: str, redis_prefix: str):
    rate, duration = 60.0, 3.0
    start_at = time.time() + 2.5  # time for the spawned interpreters to import
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.starmap(
            _process_takes, [(redis_url, redis_prefix, rate, start_at, duration)] * 3
        )
    assert all(began < start_at + 0.5 for began, _ in results), "a process started late"
    assert all(len(stamps) >= 0.1 * rate * duration for _, stamps in results)
    merged = [stamp for _, stamps in results for stamp in stamps]
    check_rate(merged, start_at, start_at + duration, rate)


@pytest.mark.serial  # counts grants per second
def test_second_sender_keeps_its_own_rate_while_first_is_saturated(
    redis_url: str, redis_prefix: str
):
    busy_rate, quiet_rate, duration = 40.0, 10.0, 2.0

    async def scenario() -> tuple[list[float], list[float], float]:
        client = client_for(redis_url)
        try:
            limiter = RateLimiter(client, redis_prefix)
            assert limiter.bucket_key(SENDER) != limiter.bucket_key(OTHER_SENDER)
            start = time.monotonic()
            busy, quiet = await asyncio.gather(
                hammer(limiter, SENDER, busy_rate, start + duration, 50),
                hammer(limiter, OTHER_SENDER, quiet_rate, start + duration, 3),
            )
            return busy, quiet, start
        finally:
            await client.aclose()

    busy, quiet, start = run(scenario)
    check_rate(busy, start, start + duration, busy_rate)
    check_rate(quiet, start, start + duration, quiet_rate)


def test_several_tokens_at_once_give_at_most_the_bucket_and_the_wait(
    redis_url: str, redis_prefix: str
):
    rate = 20.0  # a token every 50 ms; the bucket holds 2

    async def scenario() -> None:
        client = client_for(redis_url)
        try:
            limiter = RateLimiter(client, redis_prefix)
            first = await limiter.try_acquire(SENDER, rate, 10)
            assert first.granted == burst_tokens(rate) == 2
            assert not first.blocked
            assert 0.040 < first.wait_seconds <= 0.050
            assert 0 < await client.pttl(limiter.bucket_key(SENDER)) <= 101

            empty = await limiter.try_acquire(SENDER, rate, 10)
            assert empty.granted == 0
            assert 0.030 < empty.wait_seconds <= 0.050

            await asyncio.sleep(empty.wait_seconds)
            assert (await limiter.try_acquire(SENDER, rate, 10)).granted == 1
            assert await limiter.take(SENDER, rate) is True

            await asyncio.sleep(0.2)  # idle: the key is gone, nothing lingers
            assert not await client.exists(limiter.bucket_key(SENDER))
            idle = await limiter.try_acquire(SENDER, rate, 1)
            assert (idle.granted, idle.wait_seconds, idle.blocked, idle.due_in(0)) == (1, 0, 0, 0)
        finally:
            await client.aclose()

    run(scenario)


def test_block_key_grants_nothing_and_take_returns_zero_at_once(redis_url: str, redis_prefix: str):
    pause = f"{redis_prefix}pause:sender:SID:{SENDER}"
    blocks = (f"{redis_prefix}pause:account:SID", pause)

    async def scenario() -> None:
        client = client_for(redis_url)
        try:
            limiter = RateLimiter(client, redis_prefix)
            await client.set(pause, "WA401")
            grant = await limiter.try_acquire(SENDER, 10.0, 3, blocks)
            assert (grant.granted, grant.blocked) == (0, True)
            assert await asyncio.wait_for(limiter.take(SENDER, 10.0, blocks), 0.5) is False
            assert not await client.exists(limiter.bucket_key(SENDER))  # nothing consumed

            await client.delete(pause)
            assert await limiter.take(SENDER, 10.0, blocks) is True
        finally:
            await client.aclose()

    run(scenario)


def test_invalid_arguments_are_refused(redis_url: str, redis_prefix: str):
    async def scenario() -> None:
        client = client_for(redis_url)
        try:
            limiter = RateLimiter(client, redis_prefix)
            for rate, tokens in [(0.0, 1), (-5.0, 1), (float("nan"), 1), (10.0, 0)]:
                with pytest.raises(ValueError):
                    await limiter.try_acquire(SENDER, rate, tokens)
        finally:
            await client.aclose()

    run(scenario)
    with pytest.raises(ValueError):
        RateLimiter(aioredis.Redis(), redis_prefix, max_backoff=0)


def test_unreachable_redis_grants_nothing_and_take_keeps_trying(
    redis_prefix: str, caplog: pytest.LogCaptureFixture
):
    async def scenario() -> None:
        client = client_for("redis://127.0.0.1:1/0")  # nothing listens there
        try:
            limiter = RateLimiter(client, redis_prefix, max_backoff=0.2)
            with pytest.raises(redis.exceptions.ConnectionError):
                await limiter.try_acquire(SENDER, 1000.0)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(limiter.take(SENDER, 1000.0), 1.0)
        finally:
            await client.aclose()

    with caplog.at_level(logging.WARNING, logger="stickerq.worker.limiter"):
        run(scenario)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) >= 3  # tried again and again
    assert all("+91******5678" in w and "9812345678" not in w for w in warnings)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisRelay:
    """A TCP relay to the real Redis, switched off and on: Redis goes away without stopping it."""

    def __init__(self, target_url: str) -> None:
        self.port = _free_port()
        target = urlsplit(target_url)
        self.target = (target.hostname or "127.0.0.1", target.port or 6379)
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(
            pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True
        )


def test_take_waits_while_redis_is_away_and_grants_when_it_is_back(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
):
    async def scenario() -> None:
        relay = RedisRelay(redis_url)
        await relay.start()
        client = client_for(f"redis://127.0.0.1:{relay.port}/0")
        try:
            limiter = RateLimiter(client, redis_prefix, max_backoff=0.2)
            assert await limiter.take(SENDER, 1000.0) is True

            await relay.stop()
            waiting = asyncio.create_task(limiter.take(SENDER, 1000.0))
            await asyncio.sleep(1.0)
            assert not waiting.done(), "a token was granted without Redis"

            await relay.start()
            assert await asyncio.wait_for(waiting, 3.0) is True
        finally:
            await client.aclose()
            await relay.stop()

    with caplog.at_level(logging.INFO, logger="stickerq.worker.limiter"):
        run(scenario)
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    assert any("reached Redis again" in r.getMessage() for r in caplog.records)


def test_look_ahead_grants_tokens_due_soon_and_marks_exactly_those(
    redis_url: str, redis_prefix: str
):
    rate = 100.0  # a token every 10 ms
    marks = f"{redis_prefix}claim:ahead:sent"

    async def scenario() -> None:
        client = client_for(redis_url)
        try:
            limiter = RateLimiter(client, redis_prefix)
            await client.sadd(marks, "-")
            members = [str(pk) for pk in range(100, 130)]
            grant = await limiter.try_acquire(
                SENDER, rate, 30, (), marks, members, look_ahead_seconds=0.1
            )
            # the bucket's burst (2 tokens) plus 10 tokens of look-ahead, one per 10 ms
            assert grant.granted == 12
            dues = [grant.due_in(i) for i in range(grant.granted)]
            assert dues[:2] == [0.0, 0.0]
            assert all(abs(b - a - 0.01) < 1e-3 for a, b in itertools.pairwise(dues[1:]))
            assert 0.099 <= dues[-1] <= 0.1
            granted = {m.decode() for m in await client.smembers(marks)} - {"-"}
            assert granted == set(members[: grant.granted])
            assert 0 < grant.wait_seconds <= 0.011  # the next token after the look-ahead
            with pytest.raises(ValueError):
                await limiter.try_acquire(SENDER, rate, 2, (), marks, ["1"])
        finally:
            await client.aclose()

    run(scenario)


class CountingLimiter(RateLimiter):
    """The real limiter, counting its round trips to Redis."""

    asks = 0

    async def try_acquire(self, *args: Any, **kwargs: Any) -> Grant:
        self.asks += 1
        return await super().try_acquire(*args, **kwargs)


def test_concurrent_takes_share_round_trips_and_mark_every_member(
    redis_url: str, redis_prefix: str
):
    marks = f"{redis_prefix}claim:shared:sent"

    async def scenario() -> tuple[list[bool], int, set[str]]:
        client = client_for(redis_url)
        try:
            await client.sadd(marks, "-")
            limiter = CountingLimiter(client, redis_prefix)
            takes = [limiter.take(SENDER, 100_000.0, mark=(marks, str(pk))) for pk in range(500)]
            results = await asyncio.gather(*takes)
            members = {m.decode() for m in await client.smembers(marks)} - {"-"}
            return results, limiter.asks, members
        finally:
            await client.aclose()

    results, asks, members = run(scenario)
    assert all(results)
    assert members == {str(pk) for pk in range(500)}
    assert asks <= 500 / 8, f"{asks} round trips for 500 tokens"  # one each, before


def test_a_throttled_sender_leaves_slots_to_another(redis_url: str, redis_prefix: str):
    async def scenario() -> float:
        client = client_for(redis_url)
        try:
            limiter = RateLimiter(client, redis_prefix)
            slots = asyncio.Semaphore(WAITING_PER_SENDER + 4)
            throttled = [
                asyncio.create_task(limiter.take(OTHER_SENDER, 2.0, slots=slots))
                for _ in range(3 * WAITING_PER_SENDER)
            ]
            await asyncio.sleep(0.1)  # the throttled sender has had its first tokens
            started = time.monotonic()
            assert await asyncio.wait_for(limiter.take(SENDER, 1000.0, slots=slots), 2.0)
            waited = time.monotonic() - started
            slots.release()
            for task in throttled:
                task.cancel()
            await asyncio.gather(*throttled, return_exceptions=True)
            return waited
        finally:
            await client.aclose()

    # Were every waiting request to hold a slot, the throttled sender would hold them all
    # for seconds.
    assert run(scenario) < 0.5


def test_refuse_waiting_answers_false_to_one_claim_only(redis_url: str, redis_prefix: str):
    stopped, other = f"{redis_prefix}claim:a:sent", f"{redis_prefix}claim:b:sent"

    async def scenario() -> None:
        client = client_for(redis_url)
        try:
            await client.sadd(stopped, "-")
            await client.sadd(other, "-")
            limiter = RateLimiter(client, redis_prefix)
            slots = asyncio.Semaphore(10)
            first = [
                asyncio.create_task(limiter.take(SENDER, 2.0, mark=(stopped, str(i)), slots=slots))
                for i in range(10)
            ]
            second = asyncio.create_task(limiter.take(SENDER, 2.0, mark=(other, "x"), slots=slots))
            await asyncio.sleep(0.2)
            limiter.refuse_waiting(stopped)
            answers = await asyncio.wait_for(asyncio.gather(*first), 0.5)
            assert answers.count(True) <= 2 and answers.count(False) >= 8  # burst, then refused
            assert await asyncio.wait_for(second, 2.0) is True
            # every slot not handed to a granted request is back
            assert slots._value == 10 - answers.count(True) - 1
        finally:
            await client.aclose()

    run(scenario)


def test_a_stop_answers_false_to_requests_still_waiting_for_their_turn(
    redis_url: str, redis_prefix: str
):
    """A halted batch has requests in the dispenser (refused) and more queued behind the
    process's slots and the sender's gate: those must not go on to take tokens."""
    claim = f"{redis_prefix}claim:a:sent"

    async def scenario() -> list[bool]:
        client = client_for(redis_url)
        try:
            await client.sadd(claim, "-")
            limiter = RateLimiter(client, redis_prefix)
            slots, stop = asyncio.Semaphore(4), asyncio.Event()
            takes = [
                asyncio.create_task(
                    limiter.take(SENDER, 2.0, mark=(claim, str(i)), slots=slots, stop=stop)
                )
                for i in range(100)
            ]
            await asyncio.sleep(0.2)
            stop.set()
            limiter.refuse_waiting(claim)
            answers = await asyncio.wait_for(asyncio.gather(*takes), 1.0)
            assert slots._value == 4 - answers.count(True)
            return answers
        finally:
            await client.aclose()

    answers = run(scenario)
    assert answers.count(True) <= 4 and answers.count(False) >= 96


class CountingAsks(RateLimiter):
    """Records the time of each answer from Redis."""

    answers: list[float]

    async def try_acquire(self, *args: Any, **kwargs: Any) -> Grant:
        grant = await super().try_acquire(*args, **kwargs)
        self.answers = [*getattr(self, "answers", []), time.monotonic()]
        return grant


def test_a_hold_grants_nothing_until_it_ends(redis_url: str, redis_prefix: str):
    """After a Redis failover (worker/master_watch.py) nothing is asked while the hold lasts."""

    async def scenario() -> None:
        client = client_for(redis_url)
        until = time.monotonic() + 0.3
        try:
            limiter = CountingAsks(
                client, redis_prefix, hold=lambda: max(0.0, until - time.monotonic())
            )
            assert await limiter.take(SENDER, 1000.0) is True
            assert limiter.answers and min(limiter.answers) >= until
        finally:
            await client.aclose()

    run(scenario)


def test_tokens_answered_after_a_hold_began_are_not_used(redis_url: str, redis_prefix: str):
    """The master moved while the ask was on its way: the tokens may be the new master's while
    another worker still takes the old one's, so they are dropped and asked for again after
    the hold."""
    rate = 1.0  # a token a second, the bucket holds one
    hold_until = float("inf")

    def hold() -> float:
        return max(0.0, hold_until - time.monotonic())

    async def scenario() -> None:
        nonlocal hold_until
        client = client_for(redis_url)
        try:
            limiter = CountingAsks(client, redis_prefix, hold=hold)
            hold_until = 0.0
            original = limiter.try_acquire

            async def ask_then_move(*args: Any, **kwargs: Any) -> Grant:
                nonlocal hold_until
                grant = await original(*args, **kwargs)
                if len(limiter.answers) == 1:  # the move is learned while this ask is out
                    hold_until = time.monotonic() + 0.1
                return grant

            limiter.try_acquire = ask_then_move  # type: ignore[method-assign]
            assert await asyncio.wait_for(limiter.take(SENDER, rate), 3.0) is True
            taken_at = time.monotonic()
            first, second = limiter.answers[:2]
            # the token handed over is the second ask's, due a whole interval after the first
            assert second >= first + 0.1 and taken_at >= first + 0.9
        finally:
            await client.aclose()

    run(scenario)
