"""Two Kaleyra accounts through a real worker and the sandbox: each campaign goes out with
its own account's key (the sandbox answers RBC001 to a key that is not the SID's), a pause
of one account holds only that account, and a worker refuses what it holds no key for."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from stickerq.cli.app import app
from stickerq.errors import ConfigurationError
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import MessageStatus, PauseScope
from stickerq.worker import runtime
from tests.conftest import SENDER, STICKER_ID, wait_until
from tests.helpers import Db
from tests.two_accounts import (
    KEY_A,
    KEY_B,
    SENDER_B,
    SID_A,
    SID_B,
    accounts_json,
    two_account_sandbox_config,
    two_account_settings,
)
from tests.worker.one_batch import process_batch

TO_A = ["+919812300001", "+919812300002", "+919812300003"]
TO_B = ["+919812300011", "+919812300012", "+919812300013"]


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(two_account_sandbox_config()) as server:
        yield server


@pytest.fixture
def settings(pg_database: str, redis_prefix: str, sandbox: SandboxServer) -> Settings:
    return two_account_settings(pg_database, redis_prefix, sandbox.url)


def send(settings: Settings, sid: str, to: list[str]) -> int:
    request = CampaignRequest(sticker_id=STICKER_ID, to=",".join(to), account=sid)
    return enqueue_campaign(settings, request).campaign_id


def test_two_accounts_each_send_with_their_own_key_and_both_complete(
    settings: Settings, sandbox: SandboxServer, spawn_worker: Callable[..., Path]
) -> None:
    """A `stickerq worker` process, given the list as STICKERQ_ACCOUNTS like any setting."""
    worker_log = spawn_worker(settings, "--loglevel", "DEBUG", "--concurrency", "1")
    db = Db(settings)
    a, b = send(settings, SID_A, TO_A), send(settings, SID_B, TO_B)
    for campaign_id in (a, b):
        wait_until(lambda c=campaign_id: db.campaign(c).status == "completed", timeout=60)  # type: ignore[misc]
        assert {m.status for m in db.messages(campaign_id)} == {MessageStatus.SENT}
    requests = sandbox.requests()
    assert all(r["headers"]["api_key_valid"] and r["code"] == "WA202" for r in requests), requests
    by_account = {(r["sid"], r["sender"], r["recipient"]) for r in requests}
    assert by_account == {(SID_A, SENDER, to) for to in TO_A} | {
        (SID_B, SENDER_B, to) for to in TO_B
    }
    seen = worker_log.read_text() + json.dumps(requests)
    assert f"sending on Kaleyra account(s) {SID_A}, {SID_B}" in seen
    assert KEY_A not in seen and KEY_B not in seen
    db.close()


def test_a_low_balance_pauses_its_account_only(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable[[Settings], None]
) -> None:
    sandbox.script({TO_A[0]: ["E110"]})
    run_worker(settings)
    db = Db(settings)
    first = send(settings, SID_A, TO_A[:1])
    wait_until(lambda: db.settled(first))
    (pause,) = db.active_pauses()
    assert (pause.scope, pause.sid) == (PauseScope.ACCOUNT, SID_A)
    held, b = send(settings, SID_A, TO_A[1:]), send(settings, SID_B, TO_B)
    wait_until(lambda: db.campaign(b).status == "completed")
    assert {m.status for m in db.messages(b)} == {MessageStatus.SENT}
    assert {m.status for m in db.messages(held)} == {MessageStatus.PENDING}
    assert {r["recipient"] for r in sandbox.requests()} == {TO_A[0], *TO_B}
    db.close()


def test_a_campaign_of_an_account_the_worker_holds_no_key_for_is_not_sent(
    settings: Settings, sandbox: SandboxServer
) -> None:
    campaign_id = send(settings, SID_B, TO_B)
    only_a = json.dumps(json.loads(accounts_json())[:1])
    runtime.configure(settings.model_copy(update={"accounts": SecretStr(only_a)}))
    db = Db(settings)
    try:
        ids = [m.id for m in db.messages(campaign_id)]
        with pytest.raises(ConfigurationError, match=f"account {SID_B} .* keys of {SID_A} only"):
            process_batch(runtime.current_runtime(), campaign_id, ids)
    finally:
        runtime.shutdown()
    assert {m.status for m in db.messages(campaign_id)} == {MessageStatus.PENDING}
    assert sandbox.requests() == []
    db.close()


def test_a_worker_refuses_to_start_without_every_accounts_key(settings: Settings) -> None:
    entries = json.loads(accounts_json())
    del entries[1]["api_key"]
    env = {**settings.as_environment(), "STICKERQ_ACCOUNTS": json.dumps(entries)}
    result = CliRunner().invoke(app, ["worker"], env=env)
    assert result.exit_code == 2, result.output
    assert f"no api_key for Kaleyra account(s) {SID_B}" in result.output
    assert KEY_A not in result.output and KEY_B not in result.output
