"""A campaign names its Kaleyra account: stored with its SID, or refused before anything is
stored (an unknown account, a sender the account does not list), on both backends."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import update

from stickerq.accounts import ForeignSender, UnknownAccount
from stickerq.models import Message, Pause
from stickerq.pauses import pause_keys
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.operations import resume_sending
from stickerq.producer.request import CampaignRequest, Timing
from stickerq.producer.requeue import requeue
from stickerq.producer.send import send_campaign
from stickerq.producer.store import RecipientsRejected
from stickerq.producer.suppressions import add_numbers
from stickerq.settings import Settings
from stickerq.states import MessageStatus, PauseScope
from tests.conftest import SENDER, STICKER_ID
from tests.helpers import Db, stored_counts
from tests.two_accounts import SENDER_B, SID_A, SID_B, two_account_settings

TO = "+919812345678,+919812345679"
IN_AN_HOUR = Timing(at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
EVERY_MONDAY = Timing(every="0 9 * * 1", tz="Asia/Kolkata")
TIMINGS = ["now", "at", "every"]


@pytest.fixture
def settings(database_url: str, redis_prefix: str) -> Settings:
    return two_account_settings(database_url, redis_prefix, "http://127.0.0.1:9")


def campaign(**fields: object) -> CampaignRequest:
    return CampaignRequest(sticker_id=STICKER_ID, to=TO, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("timing", [Timing(), IN_AN_HOUR, EVERY_MONDAY], ids=TIMINGS)
def test_each_campaign_is_stored_with_the_account_it_names(
    settings: Settings, timing: Timing
) -> None:
    a, _ = send_campaign(settings, campaign(account=SID_A), timing)
    b, _ = send_campaign(settings, campaign(account=SID_B), timing)
    db = Db(settings)
    # No sender given: each account's only listed number
    assert (db.campaign(a.campaign_id).sid, db.campaign(a.campaign_id).sender) == (SID_A, SENDER)
    assert (db.campaign(b.campaign_id).sid, db.campaign(b.campaign_id).sender) == (SID_B, SENDER_B)
    db.close()


@pytest.mark.parametrize("timing", [Timing(), IN_AN_HOUR, EVERY_MONDAY], ids=TIMINGS)
def test_an_unknown_or_missing_account_is_refused_and_nothing_is_stored(
    settings: Settings, timing: Timing
) -> None:
    with pytest.raises(UnknownAccount, match=f"'HXNOPE' is configured; known: {SID_A}, {SID_B}"):
        send_campaign(settings, campaign(account="HXNOPE"), timing)
    with pytest.raises(UnknownAccount, match="--account"):
        send_campaign(settings, campaign(), timing)  # two accounts: which one?
    assert stored_counts(settings) == (0, 0)


def test_a_sender_the_account_does_not_list_is_refused_and_nothing_is_stored(
    settings: Settings,
) -> None:
    with pytest.raises(
        ForeignSender,
        match=re.escape(f"sender {SENDER_B} is not a business number of Kaleyra account {SID_A}"),
    ):
        enqueue_campaign(settings, campaign(account=SID_A, sender=SENDER_B))
    with pytest.raises(ForeignSender):
        send_campaign(settings, campaign(account=SID_B, sender=SENDER), IN_AN_HOUR)
    assert stored_counts(settings) == (0, 0)


def test_suppressions_are_the_named_accounts(settings: Settings) -> None:
    add_numbers(settings, ["+919812345678"], account=SID_B, actor="tester")
    a = enqueue_campaign(settings, campaign(account=SID_A))
    b = enqueue_campaign(settings, campaign(account=SID_B))
    assert (a.suppressed, b.suppressed) == (0, 1)
    with pytest.raises(UnknownAccount, match="--account"):
        add_numbers(settings, ["+919812345678"], actor="tester")  # two accounts: which list?


def test_a_senders_pause_is_lifted_on_its_account_and_requeue_can_lift_it(
    settings: Settings,
) -> None:
    campaign_id = enqueue_campaign(settings, campaign(account=SID_B)).campaign_id
    db = Db(settings)
    with db.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.campaign_id == campaign_id)
            .values(status=MessageStatus.PARKED, last_error_code="WA401")
        )
        session.add_all(
            [
                Pause(
                    scope=PauseScope.SENDER, sid=SID_B, sender=SENDER_B, code="WA401", reason="-"
                ),
                Pause(scope=PauseScope.ACCOUNT, sid=SID_A, sender="", code="E110", reason="-"),
            ]
        )
    client = redis.Redis.from_url(settings.redis_url)
    _, mirror = pause_keys(settings.redis_prefix, SID_B, SENDER_B)
    client.set(mirror, "WA401")
    # requeue --resume lifts the sender's pause by its number (it once passed SID and number)
    result = requeue(settings, campaign_id, "parked", code="WA401", resume=True, actor="tester")
    assert (result.requeued, result.pauses_lifted) == (2, 1)
    assert [(p.scope, p.sid) for p in db.active_pauses()] == [(PauseScope.ACCOUNT, SID_A)]
    assert client.exists(mirror) == 0
    assert resume_sending(settings, sender=SENDER_B, actor="tester") == (
        0,
        1,
    )  # nothing left to lift
    db.close()


def test_a_from_column_may_name_only_the_accounts_own_numbers(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "replies.csv"
    path.write_text(f"phone,from\n+919812345678,{SENDER}\n+919812345679,{SENDER_B}\n")
    before = stored_counts(settings)
    request = CampaignRequest(sticker_id=STICKER_ID, to_file=path, account=SID_A)
    with pytest.raises(RecipientsRejected) as caught:
        enqueue_campaign(settings, request)
    [bad] = caught.value.report.invalid
    assert bad.line == 3
    assert bad.reason == (
        f"the from number is not valid: {SENDER_B} is not a business number of account "
        f"{SID_A} (its senders: {SENDER})"
    )
    assert stored_counts(settings) == before
    # Its own numbers only: stored, the rows without one sent from the account's only number.
    path.write_text(f"phone,from\n+919812345678,{SENDER}\n+919812345679,\n")
    assert enqueue_campaign(settings, request).recipients == 2
