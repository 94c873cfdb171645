"""The proofs of life of an idempotency key's owner: a process on this host (SQLite), an
advisory lock held in an open transaction (PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from stickerq.db import make_engine
from stickerq.producer.key_owners import (
    AdvisoryLock,
    ThisProcess,
    process_alive,
    process_identity,
)


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait(timeout=30)


def test_this_process_lives_and_a_child_lives_until_it_dies(
    child: subprocess.Popen[bytes],
) -> None:
    assert process_alive(process_identity(os.getpid()))
    identity = process_identity(child.pid)
    assert process_alive(identity)
    child.kill()
    child.wait(timeout=30)
    assert not process_alive(identity)


def test_a_killed_child_not_yet_reaped_is_dead(child: subprocess.Popen[bytes]) -> None:
    identity = process_identity(child.pid)
    child.kill()  # a zombie until waited for: it stores nothing any more
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    assert not process_alive(identity)


def test_a_pid_reused_by_another_process_or_boot_is_not_its_owner() -> None:
    boot, pid, start = process_identity(os.getpid()).split(":")
    if not start:
        pytest.skip("no /proc: a process is known by its pid alone")
    assert not process_alive(f"{boot}:{pid}:{int(start) + 1}")
    assert not process_alive(f"an-earlier-boot:{pid}:{start}")


def test_in_this_process_an_owner_lives_while_its_reservation_is_stored() -> None:
    owner, retry = ThisProcess(), ThisProcess()
    try:
        assert owner.process == retry.process and owner.token != retry.token
        assert retry.owner_alive(owner.process, owner.token)
        owner.close()  # stored, or given back: a row still naming it is a dead one's
        assert not retry.owner_alive(owner.process, owner.token)
        assert not retry.owner_alive(None, None)  # reserved before owners were recorded
    finally:
        owner.close()
        retry.close()


@pytest.fixture
def pg_engine(pg_database: str) -> Iterator[Engine]:
    engine = make_engine(pg_database)
    yield engine
    engine.dispose()


def test_one_request_at_a_time_holds_a_keys_lock(pg_engine: Engine) -> None:
    owner = AdvisoryLock(pg_engine, "lock-1")
    try:
        retry, other_key = AdvisoryLock(pg_engine, "lock-1"), AdvisoryLock(pg_engine, "lock-2")
        assert owner.held and not retry.held and other_key.held
        assert retry.owner_alive(None, None) and not owner.owner_alive(None, None)
        other_key.close()
        owner.close()  # its transaction ends: the lock is free
        after = AdvisoryLock(pg_engine, "lock-1")
        assert after.held
        after.close()
    finally:
        owner.close()
