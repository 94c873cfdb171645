"""`--in-window` and `--to-window` end to end: a real worker, the sandbox, the window ledger."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from stickerq.export import export_campaign
from stickerq.models import utcnow
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.callback_payloads import StatusCallback
from stickerq.producer.callbacks import apply_callbacks
from stickerq.producer.failures import FailureFilters, failure_summary
from stickerq.producer.progress import campaign_progress
from stickerq.producer.reports import campaign_report
from stickerq.producer.request import CampaignRequest
from stickerq.producer.suppressions import add_numbers
from stickerq.producer.window_audience import AudienceError, audience_size
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from stickerq.window_ledger import WINDOW, Inbound, record_inbound, window_of
from tests.conftest import SENDER, STICKER_ID, wait_until
from tests.helpers import Db

OUTSIDE = MessageStatus.OUTSIDE_WINDOW
SENT = MessageStatus.SENT
OTHER_SENDER = "+919000000002"


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+91981235{n:04d}" for n in range(start, start + count)]


def wrote(db: Db, customers: list[str], ago: timedelta, sender: str = SENDER) -> None:
    with db.sessions.begin() as session:
        record_inbound(session, [Inbound(sender, c, utcnow() - ago, "text") for c in customers])


def statuses(db: Db, campaign_id: int) -> dict[str, str]:
    return {m.recipient: m.status for m in db.messages(campaign_id)}


def completed(db: Db, campaign_id: int) -> bool:
    return db.campaign(campaign_id).status == "completed"


def test_only_recipients_inside_their_window_are_sent_and_the_rest_show_everywhere(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    db = Db(settings)
    inside, stale, never, closed = numbers(4), numbers(2, 10), numbers(2, 20), numbers(1, 30)
    wrote(db, inside, timedelta(hours=2))
    wrote(db, stale, WINDOW - timedelta(seconds=30))  # within the 60 s margin of its end
    wrote(db, closed, timedelta(hours=1))
    wrote(db, never, timedelta(minutes=1), sender=OTHER_SENDER)  # wrote to another number
    with db.sessions.begin() as session:  # a 131047 after their last message shut it
        session.execute(
            text("UPDATE customer_windows SET closed_at = :at WHERE customer = :c"),
            {"at": utcnow() - timedelta(minutes=5), "c": closed[0]},
        )
    everyone = inside + stale + never + closed
    counted = REGISTRY.get_sample_value(
        "stickerq_messages_total", {"outcome": "outside_window", "code": ""}
    )
    request = CampaignRequest(sticker_id=STICKER_ID, to=",".join(everyone), in_window=True)
    campaign_id = enqueue_campaign(settings, request).campaign_id
    assert db.campaign(campaign_id).in_window
    run_worker(settings)
    wait_until(lambda: completed(db, campaign_id))

    assert statuses(db, campaign_id) == {
        **{n: SENT for n in inside},
        **{n: OUTSIDE for n in stale + never + closed},
    }
    assert sorted(sandbox.stats()["accepted"]) == sorted(inside)
    assert sandbox.stats()["requests"] == len(inside)  # no request for the others
    outside = [m for m in db.messages(campaign_id) if m.status == OUTSIDE]
    assert all(m.attempts == 0 and m.claim_token is None for m in outside)
    assert all("window" in (m.last_error_detail or "") for m in outside)
    db.assert_counters_exact(campaign_id)
    now_counted = REGISTRY.get_sample_value(
        "stickerq_messages_total", {"outcome": "outside_window", "code": ""}
    )
    assert (now_counted or 0) - (counted or 0) == 5  # the worker runs in this process
    with db.sessions() as session:
        assert campaign_progress(session, campaign_id).by_status == {SENT: 4, OUTSIDE: 5}
        assert campaign_report(session, campaign_id).by_status[OUTSIDE] == 5
        summary = failure_summary(session, FailureFilters(campaign_id=campaign_id))
        assert [(row.status, row.count) for row in summary] == [(OUTSIDE, 5)]
        out = io.StringIO()
        export_campaign(session, campaign_id, out)
    exported = {row["status"] for row in csv.DictReader(io.StringIO(out.getvalue()))}
    assert exported == {SENT, OUTSIDE}
    db.close()


def test_without_in_window_the_ledger_is_not_read(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    db = Db(settings)
    recipients = numbers(3, 40)  # nobody wrote: all would be outside
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=",".join(recipients))
    ).campaign_id
    assert not db.campaign(campaign_id).in_window
    run_worker(settings)
    wait_until(lambda: completed(db, campaign_id))
    assert set(statuses(db, campaign_id).values()) == {SENT}
    db.close()


def test_a_131047_callback_shuts_the_window_until_the_customer_writes_again(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    db = Db(settings)
    [customer] = numbers(1, 50)
    wrote(db, [customer], timedelta(hours=1))
    first = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=customer, in_window=True)
    ).campaign_id
    run_worker(settings)
    wait_until(lambda: completed(db, first))
    [message] = db.messages(first)
    assert message.status == SENT and message.message_id
    # WhatsApp says otherwise: the window was shut after all.
    failed = StatusCallback(
        message.message_id, "failed", utcnow(), "131047", "Re-engagement message"
    )
    with db.sessions.begin() as session:
        apply_callbacks(session, [failed])
    with db.sessions() as session:
        window = window_of(session, SENDER, customer, settings.window_margin_seconds)
    assert window is not None and window.closed_at is not None
    assert not window.is_open(utcnow())

    second = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=customer, in_window=True)
    ).campaign_id
    wait_until(lambda: completed(db, second))
    assert statuses(db, second) == {customer: OUTSIDE}

    wrote(db, [customer], timedelta(seconds=0))  # the customer writes again
    third = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=customer, in_window=True)
    ).campaign_id
    wait_until(lambda: completed(db, third))
    assert statuses(db, third) == {customer: SENT}
    assert sandbox.stats()["accepted"] == {customer: 2}
    db.close()


def test_to_window_sends_to_who_wrote_to_that_number_since_leaving_out_opt_outs(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    db = Db(settings)
    today, yesterday, opted_out = numbers(3, 60), numbers(2, 70), numbers(1, 80)
    elsewhere = numbers(2, 90)
    wrote(db, today + opted_out, timedelta(hours=3))
    wrote(db, yesterday, timedelta(hours=30))
    wrote(db, elsewhere, timedelta(hours=1), sender=OTHER_SENDER)
    add_numbers(settings, opted_out, reason="STOP", actor="tester")

    request = CampaignRequest(sticker_id=STICKER_ID, to_window=True, sender=SENDER)
    assert audience_size(settings, request) == (SENDER, 4)  # the opt-out is counted here
    result = enqueue_campaign(settings, request)
    assert (result.recipients, result.suppressed) == (3, 1)
    assert db.campaign(result.campaign_id).in_window  # --to-window implies it
    run_worker(settings)
    wait_until(lambda: completed(db, result.campaign_id))
    assert statuses(db, result.campaign_id) == dict.fromkeys(today, SENT)

    two_days = CampaignRequest(
        sticker_id=STICKER_ID, to_window=True, sender=SENDER, window_since="2d"
    )
    wide = enqueue_campaign(settings, two_days).campaign_id
    wait_until(lambda: completed(db, wide))
    # Yesterday's customers wrote more than 24 h ago: outside their window, never sent.
    assert statuses(db, wide) == {**dict.fromkeys(today, SENT), **dict.fromkeys(yesterday, OUTSIDE)}

    other = CampaignRequest(sticker_id=STICKER_ID, to_window=True, sender=OTHER_SENDER)
    assert audience_size(settings, other) == (OTHER_SENDER, 2)
    assert sorted(sandbox.stats()["accepted"]) == sorted(today)
    db.close()


def test_to_window_refuses_a_list_beside_it_and_a_since_without_it(settings: Settings) -> None:
    with pytest.raises(AudienceError, match="only one"):
        enqueue_campaign(
            settings,
            CampaignRequest(sticker_id=STICKER_ID, to_window=True, to="+919812350000"),
        )
    with pytest.raises(AudienceError, match="goes with --to-window"):
        enqueue_campaign(
            settings,
            CampaignRequest(sticker_id=STICKER_ID, to="+919812350000", window_since="2d"),
        )
    with pytest.raises(AudienceError, match="--since"):
        audience_size(
            settings, CampaignRequest(sticker_id=STICKER_ID, to_window=True, window_since="soon")
        )


@pytest.mark.serial  # the claim must come well before the window's end
def test_a_window_that_ends_while_the_batch_waits_for_the_rate_ends_outside_window(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable
) -> None:
    """Claimed inside the window, but the rate limit holds the rest past its end."""
    settings = settings.model_copy(update={"rate_per_second": 3.0, "batch_size": 20})
    run_worker(settings)
    db = Db(settings)
    recipients = numbers(8, 100)
    margin = timedelta(seconds=settings.window_margin_seconds)
    wrote(db, recipients, WINDOW - margin - timedelta(seconds=1.5))  # ends in 1.5 s
    request = CampaignRequest(sticker_id=STICKER_ID, to=",".join(recipients), in_window=True)
    campaign_id = enqueue_campaign(settings, request).campaign_id
    wait_until(lambda: completed(db, campaign_id))
    messages = db.messages(campaign_id)
    sent = [m for m in messages if m.status == SENT]
    outside = [m for m in messages if m.status == OUTSIDE]
    assert len(sent) + len(outside) == 8 and 1 <= len(sent) <= 7
    assert all(m.claimed_at is not None and m.attempts == 0 for m in outside)
    assert all("ended" in (m.last_error_detail or "") for m in outside)
    assert sandbox.stats()["requests"] == len(sent)
    db.assert_counters_exact(campaign_id)
    db.close()
