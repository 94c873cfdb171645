"""The Redis client factory: a client of every purpose answers a real Redis with the timeouts
of its purpose, and gives up on a Redis that stops answering after its reply timeout."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from stickerq.redis_client import TIMEOUTS, Purpose, make_async_redis, make_redis


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_client_of_every_purpose_answers_ping_with_its_timeouts(
    redis_url: str, purpose: Purpose
) -> None:
    timeouts = TIMEOUTS[purpose]
    with make_redis(redis_url, purpose=purpose) as client:
        assert client.ping() is True
        connection = client.connection_pool.make_connection()
        assert (connection.socket_connect_timeout, connection.socket_timeout) == (
            timeouts.connect,
            timeouts.reply,
        )

    async def ping_async() -> tuple[bool, float | None, float | None]:
        client = make_async_redis(redis_url, purpose=purpose)
        try:
            connection = client.connection_pool.make_connection()
            return await client.ping(), connection.socket_connect_timeout, connection.socket_timeout
        finally:
            await client.aclose()

    assert asyncio.run(ping_async()) == (True, timeouts.connect, timeouts.reply)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers: a Redis that hangs."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:  # closed
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()
    for connection in accepted:
        connection.close()


def test_a_redis_that_stops_answering_is_given_up_after_the_reply_timeout(
    silent_server: str,
) -> None:
    reply = TIMEOUTS[Purpose.GLANCE].reply
    started = time.monotonic()
    with (
        make_redis(silent_server, purpose=Purpose.GLANCE) as client,
        pytest.raises(redis.TimeoutError),
    ):
        client.ping()
    assert reply <= time.monotonic() - started < reply + 2

    async def ping_async() -> None:
        client = make_async_redis(silent_server, purpose=Purpose.GLANCE)
        try:
            await client.ping()
        finally:
            await client.aclose()

    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        asyncio.run(ping_async())
    assert reply <= time.monotonic() - started < reply + 2
