"""The Redis client factory: a client of every purpose answers a real Redis with the timeouts
of its purpose, and gives up on a Redis that stops answering after its reply timeout."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from pydantic import ValidationError

from stickerq.masking import redact_url
from stickerq.redis_client import (
    TIMEOUTS,
    Purpose,
    celery_transport_options,
    make_async_redis,
    make_redis,
    parse_sentinel_url,
)
from stickerq.settings import Settings


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


# Sentinel: what the settings take and refuse (the failover itself: tests/worker/
# test_sentinel_failover.py, with real Sentinels)


def test_a_sentinel_url_is_parsed_with_its_database_and_the_masters_password() -> None:
    found = parse_sentinel_url("sentinel://:s3cret@h1:26379;sentinel://h2:26380;sentinel://h3/2")
    assert found.hosts == [("h1", 26379), ("h2", 26380), ("h3", 26379)]
    assert (found.db, found.password) == (2, "s3cret")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sentinel://h1:26379;redis://h2:6379/0", "'redis://h2:6379/0' is not sentinel://"),
        ("sentinel://h1:26379/x", "the database number must be an integer"),
        ("sentinel://:26379", "is not sentinel://host:port"),
    ],
)
def test_a_wrong_sentinel_url_is_refused_saying_how_to_write_it(url: str, says: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)):
        Settings(_env_file=None, redis_url=url, redis_sentinel_master="m")  # type: ignore[call-arg]


def test_a_sentinel_url_needs_the_masters_name_and_never_shows_a_password() -> None:
    url = "sentinel://:s3cret@h1:26379;sentinel://h2:26380/0"
    with pytest.raises(ValidationError, match="needs STICKERQ_REDIS_SENTINEL_MASTER"):
        Settings(_env_file=None, redis_url=url)  # type: ignore[call-arg]
    settings = Settings(
        _env_file=None, redis_url=url, redis_sentinel_master="stickerq",  # type: ignore[call-arg]
        redis_sentinel_password="sentinel-pw",
    )  # fmt: skip
    target = settings.redis_target
    assert (target.sentinel_master, target.sentinel_password) == ("stickerq", "sentinel-pw")
    assert celery_transport_options(target) == {
        "master_name": "stickerq",
        "sentinel_kwargs": {"password": "sentinel-pw"},
    }
    assert "s3cret" not in redact_url(url) and "h2:26380" in redact_url(url)
    assert "sentinel-pw" not in repr(settings) and "sentinel-pw" not in str(settings)
