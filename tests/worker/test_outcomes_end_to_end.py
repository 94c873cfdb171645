"""Every row of the contract's outcome table, through a real Celery worker and the sandbox,
with the final status, code, attempts and pause state read back from the database."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import MessageStatus, PauseScope
from tests.conftest import STICKER_ID, make_settings, wait_until
from tests.helpers import Db

RECIPIENT = "+919812345678"

# script -> (status, last_error_code, attempts, pause scope)
OUTCOME_ROWS = {
    "WA202": (MessageStatus.SENT, None, 1, None),
    "WA200": (MessageStatus.SENT, None, 1, None),
    "WA500,WA202": (MessageStatus.SENT, None, 2, None),
    "E110": (MessageStatus.PARKED, "E110", 1, PauseScope.ACCOUNT),
    "WA401": (MessageStatus.PARKED, "WA401", 1, PauseScope.SENDER),
    "WAV2101": (MessageStatus.PARKED, "WAV2101", 1, PauseScope.ACCOUNT),
    "RBC001": (MessageStatus.FAILED, "RBC001", 1, PauseScope.ACCOUNT),
    "WA-401-account": (MessageStatus.FAILED, "WA-401", 1, PauseScope.ACCOUNT),
    "WA-401-version": (MessageStatus.FAILED, "WA-401", 1, PauseScope.SENDER),
    "WA400": (MessageStatus.FAILED, "WA400", 1, None),
    "NO_MESSAGE_ID": (MessageStatus.UNKNOWN, "WA202", 1, None),
    "UNKNOWN_CODE": (MessageStatus.UNKNOWN, "WA999", 1, None),
    "HTML_502": (MessageStatus.UNKNOWN, None, 1, None),
    "DROP": (MessageStatus.UNKNOWN, None, 1, None),
    "TIMEOUT": (MessageStatus.UNKNOWN, None, 1, None),
}


def send_one(settings: Settings, recipient: str = RECIPIENT) -> int:
    result = enqueue_campaign(
        settings,
        CampaignRequest(
            sticker_id=STICKER_ID,
            to=recipient,
            ref="customer1",
            ref1="marketing",
            ref2="dictionary",
        ),
    )
    return result.campaign_id


@pytest.mark.parametrize("script", list(OUTCOME_ROWS))
def test_outcome_row_end_to_end(
    script: str,
    settings: Settings,
    sandbox: SandboxServer,
    run_worker: Callable[[Settings], None],
) -> None:
    status, code, attempts, pause_scope = OUTCOME_ROWS[script]
    sandbox.script({RECIPIENT: script.split(",")})
    run_worker(settings)
    db = Db(settings)
    campaign_id = send_one(settings)

    wait_until(lambda: db.settled(campaign_id))
    message = db.message(campaign_id, RECIPIENT)
    assert message.status == status
    assert message.last_error_code == code
    assert message.attempts == attempts
    assert len(db.attempts(message.id)) == attempts
    assert (message.ref, message.ref1, message.ref2) == ("customer1", "marketing", "dictionary")
    if status is MessageStatus.SENT:
        accepted = {row["recipient"]: row["message_id"] for row in sandbox.accepted()}
        assert message.message_id == accepted[RECIPIENT]
        # the batch completes its campaign in a transaction of its own, just after the results
        wait_until(lambda: db.campaign(campaign_id).status == "completed", timeout=10)
    else:
        assert message.message_id is None
        assert message.last_error_detail
    pauses = db.active_pauses()
    assert [p.scope for p in pauses] == ([pause_scope] if pause_scope else [])
    if pause_scope is PauseScope.SENDER:
        assert pauses[0].sender == settings.sender
    db.close()


def test_wrong_api_key_fails_with_rbc001_and_pauses_account(
    pg_database: str, redis_prefix: str, sandbox: SandboxServer, run_worker: Callable
) -> None:
    settings = make_settings(pg_database, redis_prefix, sandbox.url, kaleyra_api_key="wrong-key")
    run_worker(settings)
    db = Db(settings)
    campaign_id = send_one(settings)
    wait_until(lambda: db.settled(campaign_id))
    message = db.message(campaign_id, RECIPIENT)
    assert (message.status, message.last_error_code) == (MessageStatus.FAILED, "RBC001")
    assert [p.code for p in db.active_pauses()] == ["RBC001"]
    db.close()


def test_sender_not_on_account_parks_with_wa401(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    settings = settings.model_copy(update={"sender": "+919000000077"})
    run_worker(settings)
    db = Db(settings)
    campaign_id = send_one(settings)
    wait_until(lambda: db.settled(campaign_id))
    message = db.message(campaign_id, RECIPIENT)
    assert (message.status, message.last_error_code) == (MessageStatus.PARKED, "WA401")
    [pause] = db.active_pauses()
    assert (pause.scope, pause.sender) == (PauseScope.SENDER, "+919000000077")
    db.close()


def test_connection_refused_is_not_an_attempt_and_stays_due(
    pg_database: str, redis_prefix: str, run_worker: Callable
) -> None:
    settings = make_settings(pg_database, redis_prefix, "http://127.0.0.1:9")  # nothing listens
    run_worker(settings)
    db = Db(settings)
    campaign_id = send_one(settings)
    message = wait_until(
        lambda: next((m for m in db.messages(campaign_id) if m.next_attempt_at), None)
    )
    assert message.status == MessageStatus.PENDING
    assert message.attempts == 0
    assert db.attempts(message.id) == []
    db.close()
