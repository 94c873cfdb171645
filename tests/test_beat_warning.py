"""`send`, `status` and `campaigns list` say so when no beat ran lately on their Redis and
prefix; they are quiet once a worker with beat has run its periodic tasks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis
from click.testing import Result

from stickerq.beat import mark_beat_seen
from stickerq.keys import beat_seen_key
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from tests.conftest import REDIS_URL, STICKER_ID, make_settings, wait_until
from tests.test_cli import run

NO_BEAT = "no beat has run on this Redis and prefix"


def warned(result: Result) -> bool:
    return NO_BEAT in result.stderr.replace("\n", " ")


def test_commands_warn_until_a_beat_runs(
    sqlite_database: str, redis_prefix: str, sandbox: SandboxServer
) -> None:
    settings = make_settings(sqlite_database, redis_prefix, sandbox.url)
    sent = run(settings, "send", "--sticker-id", STICKER_ID, "--to", "+919812345678")
    assert sent.exit_code == 0, sent.output
    listed = run(settings, "campaigns", "list")
    shown = run(settings, "status", "1")
    assert listed.exit_code == shown.exit_code == 0
    assert warned(sent) and warned(listed) and warned(shown)
    assert "stickerq worker --beat" in shown.stderr

    mark_beat_seen(redis.Redis.from_url(REDIS_URL), redis_prefix, 1.0)
    assert not warned(run(settings, "status", "1"))
    assert not warned(run(settings, "campaigns", "list"))


def test_a_worker_with_beat_marks_beat_seen(
    sqlite_database: str,
    redis_prefix: str,
    sandbox: SandboxServer,
    spawn_worker: Callable[..., Path],
) -> None:
    settings: Settings = make_settings(sqlite_database, redis_prefix, sandbox.url)
    client = redis.Redis.from_url(REDIS_URL)
    assert not client.exists(beat_seen_key(redis_prefix))
    spawn_worker(settings, "--beat", "--concurrency", "1")
    wait_until(lambda: client.exists(beat_seen_key(redis_prefix)), timeout=30, interval=0.2)
    assert 0 < client.ttl(beat_seen_key(redis_prefix)) <= 60
