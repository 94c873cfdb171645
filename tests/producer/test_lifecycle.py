"""Campaign lifecycle: list, show, pause, resume and cancel; on both backends, then end to end
with a real worker and the sandbox, then through the CLI."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from stickerq.cli import app
from stickerq.errors import CampaignNotFound, ServiceUnavailable
from stickerq.keys import campaign_pause_key
from stickerq.models import Campaign, Message
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.lifecycle import (
    CampaignStateError,
    UnknownCampaignStatus,
    cancel_campaign,
    list_campaigns,
    pause_campaign,
    resume_campaign,
    show_campaign,
)
from stickerq.producer.request import CampaignRequest
from stickerq.queue import queued_tasks
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import CampaignStatus, MessageStatus
from tests.conftest import REDIS_URL, STICKER_ID, make_settings, wait_until
from tests.helpers import Db

RECIPIENTS = [f"+91981234{n:04d}" for n in range(300)]


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def lc_settings(database_url: str, redis_prefix: str) -> Settings:
    """Either backend and Redis, no worker: dispatched batches wait in the queue."""
    return make_settings(database_url, redis_prefix, "http://127.0.0.1:9", batch_size=5)


def new_campaign(settings: Settings, sessions: sessionmaker[Session], count: int = 12) -> int:
    result = enqueue_campaign(
        settings,
        CampaignRequest(sticker_id=STICKER_ID, to=",".join(RECIPIENTS[:count])),
        sessions=sessions,
    )
    return result.campaign_id


def set_campaign(sessions: sessionmaker[Session], campaign_id: int, **values: object) -> None:
    with sessions.begin() as session:
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))


def set_messages(sessions: sessionmaker[Session], campaign_id: int, *statuses: str) -> None:
    """Give the campaign's first messages (by id) these statuses."""
    with sessions.begin() as session:
        ids = session.scalars(
            select(Message.id).where(Message.campaign_id == campaign_id).order_by(Message.id)
        ).all()
        for pk, status in zip(ids, statuses, strict=False):
            session.execute(update(Message).where(Message.id == pk).values(status=status))


def statuses(sessions: sessionmaker[Session], campaign_id: int) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Message.status)
                .where(Message.campaign_id == campaign_id)
                .order_by(Message.id)
            )
        )


def campaign(sessions: sessionmaker[Session], campaign_id: int) -> Campaign:
    with sessions() as session:
        row = session.get(Campaign, campaign_id)
        assert row is not None
        return row


def pause_key(settings: Settings, campaign_id: int) -> object:
    key = campaign_pause_key(settings.redis_prefix, campaign_id)
    return redis.Redis.from_url(settings.redis_url).get(key)


def queue_length(settings: Settings) -> int:
    return queued_tasks(redis.Redis.from_url(settings.redis_url), settings.redis_prefix)


# --- pause ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [CampaignStatus.QUEUED, CampaignStatus.RUNNING])
def test_pause_moves_queued_or_running_campaign_to_paused_with_reason_and_sets_redis_key(
    lc_settings: Settings, sessions: sessionmaker[Session], status: CampaignStatus
) -> None:
    campaign_id = new_campaign(lc_settings, sessions)
    set_campaign(sessions, campaign_id, status=status)

    result = pause_campaign(
        lc_settings, campaign_id, "wrong sticker", sessions=sessions, actor="tester"
    )

    assert (result.changed, result.status, result.action) == (True, "paused", "pause")
    assert "wrong sticker" in result.message
    row = campaign(sessions, campaign_id)
    assert (row.status, row.pause_reason) == ("paused", "wrong sticker")
    assert pause_key(lc_settings, campaign_id) == b"paused"
    assert set(statuses(sessions, campaign_id)) == {"pending"}


def test_pausing_a_paused_campaign_is_a_no_op_that_says_so(
    lc_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(lc_settings, sessions)
    pause_campaign(lc_settings, campaign_id, "first", sessions=sessions, actor="tester")

    result = pause_campaign(lc_settings, campaign_id, "second", sessions=sessions, actor="tester")

    assert not result.changed
    assert result.message == f"campaign {campaign_id} is already paused (first); nothing changed"
    assert campaign(sessions, campaign_id).pause_reason == "first"


def test_pause_without_a_reason_records_that_an_operator_paused_it(
    lc_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(lc_settings, sessions)
    pause_campaign(lc_settings, campaign_id, sessions=sessions, actor="tester")
    assert campaign(sessions, campaign_id).pause_reason == "paused by an operator"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("completed", "is completed; only queued, running or paused campaigns can be paused"),
        ("cancelled", "is cancelled; only queued, running or paused campaigns can be paused"),
        ("scheduled", "can be paused (it has not started: cancel or reschedule it instead)"),
    ],
)
def test_pause_refuses_a_campaign_that_is_not_sending(
    lc_settings: Settings, sessions: sessionmaker[Session], status: str, expected: str
) -> None:
    campaign_id = new_campaign(lc_settings, sessions)
    set_campaign(sessions, campaign_id, status=status)

    with pytest.raises(CampaignStateError, match=re.escape(expected)) as refused:
        pause_campaign(lc_settings, campaign_id, "no", sessions=sessions, actor="tester")

    assert str(refused.value).startswith(f"campaign {campaign_id} is {status};")
    assert campaign(sessions, campaign_id).status == status
    assert pause_key(lc_settings, campaign_id) is None


def test_every_action_on_a_missing_campaign_says_it_does_not_exist(
    lc_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    for action in (pause_campaign, resume_campaign, cancel_campaign):
        with pytest.raises(CampaignNotFound, match="no campaign 999"):
            action(lc_settings, 999, sessions=sessions, actor="tester")
    with pytest.raises(CampaignNotFound, match="no campaign 999"):
        show_campaign(sessions, 999)


# --- resume -----------------------------------------------------------------------------------


def test_resume_of_a_started_campaign_runs_again_and_dispatches_what_is_pending(
    lc_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(lc_settings, sessions, count=12)
    set_campaign(sessions, campaign_id, status="running", started_at=datetime.now(UTC))
    pause_campaign(lc_settings, campaign_id, "lunch", sessions=sessions, actor="tester")
    set_messages(sessions, campaign_id, "sent", "sent", "failed", "sending")  # 8 left pending
    queued_before = queue_length(lc_settings)

    result = resume_campaign(lc_settings, campaign_id, sessions=sessions, actor="tester")

    assert (result.changed, result.status, result.batches) == (True, "running", 2)  # 8 / 5
    row = campaign(sessions, campaign_id)
    assert (row.status, row.pause_reason) == ("running", None)
    assert pause_key(lc_settings, campaign_id) is None
    assert queue_length(lc_settings) == queued_before + 2


def test_resume_of_a_campaign_nothing_was_claimed_from_goes_back_to_queued(
    lc_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(lc_settings, sessions)
    pause_campaign(lc_settings, campaign_id, sessions=sessions, actor="tester")

    result = resume_campaign(lc_settings, campaign_id, sessions=sessions, actor="tester")

    assert (result.status, result.batches) == ("queued", 3)
    assert campaign(sessions, campaign_id).status == "queued"


def test_resume_lifts_the_workers_own_pause_after_a_run_of_wa400s(
    lc_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(lc_settings, sessions)
    reason = "20 WA400 (bad payload) answers in a row: check the sticker id or link"
    set_campaign(
        sessions, campaign_id, status="paused", pause_reason=reason, wa400_streak=20,
        started_at=datetime.now(UTC),
    )  # fmt: skip
    redis.Redis.from_url(REDIS_URL).set(campaign_pause_key(lc_settings.redis_prefix, campaign_id),
                                        "WA400")  # fmt: skip

    result = resume_campaign(lc_settings, campaign_id, sessions=sessions, actor="tester")

    assert result.status == "running"
    row = campaign(sessions, campaign_id)
    assert (row.status, row.pause_reason, row.wa400_streak) == ("running", None, 0)
    assert pause_key(lc_settings, campaign_id) is None


def test_resume_with_nothing_left_completes_the_campaign(
    lc_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(lc_settings, sessions, count=3)
    set_campaign(sessions, campaign_id, status="paused", started_at=datetime.now(UTC))
    set_messages(sessions, campaign_id, "sent", "sent", "failed")

    result = resume_campaign(lc_settings, campaign_id, sessions=sessions, actor="tester")

    assert (result.status, result.batches) == ("completed", 0)
    row = campaign(sessions, campaign_id)
    assert row.status == "completed"
    assert row.finished_at is not None


@pytest.mark.parametrize("status", ["queued", "running"])
def test_resuming_a_campaign_that_is_not_paused_is_a_no_op(
    lc_settings: Settings, sessions: sessionmaker[Session], status: str
) -> None:
    campaign_id = new_campaign(lc_settings, sessions)
    set_campaign(sessions, campaign_id, status=status)
    queued_before = queue_length(lc_settings)

    result = resume_campaign(lc_settings, campaign_id, sessions=sessions, actor="tester")

    assert not result.changed
    assert result.message == f"campaign {campaign_id} is {status}, not paused; nothing changed"
    assert queue_length(lc_settings) == queued_before


@pytest.mark.parametrize("status", ["completed", "cancelled", "scheduled"])
def test_resume_refuses_a_campaign_that_was_never_paused_or_is_over(
    lc_settings: Settings, sessions: sessionmaker[Session], status: str
) -> None:
    campaign_id = new_campaign(lc_settings, sessions)
    set_campaign(sessions, campaign_id, status=status)

    expected = f"campaign {campaign_id} is {status}; only paused campaigns can be resumed"
    with pytest.raises(CampaignStateError, match=expected):
        resume_campaign(lc_settings, campaign_id, sessions=sessions, actor="tester")
    assert campaign(sessions, campaign_id).status == status


def test_resume_with_redis_down_changes_nothing(
    lc_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(lc_settings, sessions)
    pause_campaign(lc_settings, campaign_id, sessions=sessions, actor="tester")
    down = lc_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})

    with pytest.raises(ServiceUnavailable, match="Redis is not reachable"):
        resume_campaign(down, campaign_id, sessions=sessions, actor="tester")
    assert campaign(sessions, campaign_id).status == "paused"


def test_pause_with_redis_down_still_pauses_in_the_database_and_warns(
    lc_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(lc_settings, sessions)
    down = lc_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})

    result = pause_campaign(down, campaign_id, sessions=sessions, actor="tester")

    assert campaign(sessions, campaign_id).status == "paused"  # no new claim
    [warning] = result.warnings
    assert "Redis is unreachable" in warning


# --- cancel -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["scheduled", "queued", "running", "paused"])
def test_cancel_marks_pending_cancelled_and_leaves_sent_and_sending_alone(
    lc_settings: Settings, sessions: sessionmaker[Session], status: str
) -> None:
    campaign_id = new_campaign(lc_settings, sessions, count=6)
    set_campaign(sessions, campaign_id, status=status)
    set_messages(sessions, campaign_id, "sent", "delivered", "failed", "sending")

    result = cancel_campaign(lc_settings, campaign_id, sessions=sessions, actor="tester")

    assert (result.changed, result.status, result.cancelled_messages) == (True, "cancelled", 2)
    assert statuses(sessions, campaign_id) == [
        "sent", "delivered", "failed", "sending", "cancelled", "cancelled",
    ]  # fmt: skip
    row = campaign(sessions, campaign_id)
    assert row.status == "cancelled"
    assert row.finished_at is not None
    assert pause_key(lc_settings, campaign_id) == b"cancelled"


def test_cancelling_a_cancelled_campaign_is_a_no_op(
    lc_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(lc_settings, sessions)
    cancel_campaign(lc_settings, campaign_id, sessions=sessions, actor="tester")
    finished = campaign(sessions, campaign_id).finished_at

    result = cancel_campaign(lc_settings, campaign_id, sessions=sessions, actor="tester")

    assert (result.changed, result.cancelled_messages) == (False, 0)
    assert result.message == f"campaign {campaign_id} is already cancelled; nothing changed"
    assert campaign(sessions, campaign_id).finished_at == finished


def test_cancel_refuses_a_completed_campaign(
    lc_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(lc_settings, sessions, count=2)
    set_campaign(sessions, campaign_id, status="completed")
    set_messages(sessions, campaign_id, "sent", "sent")

    expected = "is completed; only scheduled, queued, running or paused campaigns can be cancelled"
    with pytest.raises(CampaignStateError, match=expected):
        cancel_campaign(lc_settings, campaign_id, sessions=sessions, actor="tester")
    assert statuses(sessions, campaign_id) == ["sent", "sent"]


# --- list and show ----------------------------------------------------------------------------


def test_list_shows_newest_first_filters_by_status_and_limits(
    lc_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    ids = [new_campaign(lc_settings, sessions, count=2) for _ in range(4)]
    set_campaign(sessions, ids[1], status="completed")
    set_campaign(sessions, ids[3], status="completed")

    assert [c.campaign_id for c in list_campaigns(sessions, limit=50)] == ids[::-1]
    assert [c.campaign_id for c in list_campaigns(sessions, status="completed", limit=50)] == [
        ids[3], ids[1],
    ]  # fmt: skip
    assert [c.campaign_id for c in list_campaigns(sessions, limit=2)] == [ids[3], ids[2]]
    assert list_campaigns(sessions, status="paused", limit=50) == []
    with pytest.raises(UnknownCampaignStatus, match="unknown campaign status 'done'; use one of"):
        list_campaigns(sessions, status="done", limit=50)


def test_list_scheduled_shows_when_each_goes_in_its_zone_and_in_utc(
    lc_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    later, sooner, queued = (new_campaign(lc_settings, sessions, count=2) for _ in range(3))
    set_campaign(
        sessions, later, status="scheduled", timezone="America/New_York",
        scheduled_at=datetime(2031, 1, 15, 14, 0, tzinfo=UTC),
    )  # fmt: skip
    set_campaign(
        sessions, sooner, status="scheduled", timezone="Asia/Kolkata",
        scheduled_at=datetime(2030, 6, 1, 4, 0, tzinfo=UTC),
    )  # fmt: skip

    rows = list_campaigns(sessions, status="scheduled", limit=50)

    assert [row.campaign_id for row in rows] == [sooner, later]  # in the order they will go
    assert [f"{row.scheduled_at:%Y-%m-%dT%H:%M%z}" for row in rows] == [
        "2030-06-01T04:00+0000", "2031-01-15T14:00+0000",
    ]  # fmt: skip
    assert [f"{row.scheduled_local:%Y-%m-%dT%H:%M%z}" for row in rows] == [
        "2030-06-01T09:30+0530", "2031-01-15T09:00-0500",
    ]  # fmt: skip
    assert [row.timezone for row in rows] == ["Asia/Kolkata", "America/New_York"]
    assert queued not in [row.campaign_id for row in rows]


def test_show_gives_the_campaign_fields_and_its_message_counts(
    lc_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(lc_settings, sessions, count=5)
    set_messages(sessions, campaign_id, "sent", "sent", "failed")
    pause_campaign(lc_settings, campaign_id, "checking", sessions=sessions, actor="tester")

    details = show_campaign(sessions, campaign_id)

    summary, progress = details.summary, details.progress
    assert summary.campaign_id == campaign_id
    assert (summary.status, summary.pause_reason) == ("paused", "checking")
    assert (details.sticker_id, summary.sender) == (STICKER_ID, lc_settings.sender)
    assert summary.recipients == 5
    assert summary.scheduled_at is None
    assert progress.by_status == {"sent": 2, "failed": 1, "pending": 2}
    assert progress.all_settled is False


# --- end to end: a real worker and the sandbox ------------------------------------------------


@pytest.fixture
def db(settings: Settings) -> Iterator[Db]:
    reader = Db(settings)
    yield reader
    reader.close()


def _by_status(db: Db, campaign_id: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in db.messages(campaign_id):
        counts[message.status] = counts.get(message.status, 0) + 1
    return counts


def _start_campaign(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable, db: Db, batch_size: int
) -> tuple[Settings, int]:
    """300 recipients at 100/s with 50 ms latency: a few seconds; returns once 60 went out."""
    settings = settings.model_copy(update={"rate_per_second": 100.0, "batch_size": batch_size})
    sandbox.configure(latency_ms=50)
    run_worker(settings)
    campaign_id = enqueue_campaign(
        settings,
        CampaignRequest(sticker_id=STICKER_ID, to=",".join(RECIPIENTS)),
        sessions=db.sessions,
    ).campaign_id
    wait_until(lambda: sandbox.stats()["requests"] >= 60, timeout=15, interval=0.02)
    return settings, campaign_id


def _requests_stop(sandbox: SandboxServer, after: float, quiet: float) -> tuple[int, int]:
    """Requests seen `after` seconds from now, and `quiet` seconds after that."""
    time.sleep(after)
    first = sandbox.stats()["requests"]
    time.sleep(quiet)
    return first, sandbox.stats()["requests"]


def _assert_each_recipient_accepted_once(sandbox: SandboxServer, db: Db, campaign_id: int) -> None:
    accepted = sandbox.stats()["accepted"]
    assert set(accepted.values()) == {1}
    sent = {m.recipient for m in db.messages(campaign_id) if m.status == MessageStatus.SENT}
    assert sent == set(accepted)


def test_paused_campaign_loses_nothing_and_resume_sends_each_recipient_once(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable, db: Db
) -> None:
    settings, campaign_id = _start_campaign(settings, sandbox, run_worker, db, batch_size=20)

    pause_campaign(settings, campaign_id, "operator test", sessions=db.sessions, actor="tester")

    wait_until(lambda: "sending" not in _by_status(db, campaign_id), timeout=5)
    before, after = _requests_stop(sandbox, after=0.2, quiet=1.0)
    assert before == after, "requests went on while the campaign was paused"
    counts = _by_status(db, campaign_id)
    assert set(counts) == {"sent", "pending"}, counts
    assert counts["pending"] > 0
    assert counts["sent"] == sandbox.stats()["accepted_total"]
    assert db.campaign(campaign_id).status == "paused"

    result = resume_campaign(settings, campaign_id, sessions=db.sessions, actor="tester")

    assert result.status == "running"
    wait_until(lambda: db.campaign(campaign_id).status == "completed", timeout=15)
    assert _by_status(db, campaign_id) == {"sent": 300}
    _assert_each_recipient_accepted_once(sandbox, db, campaign_id)
    assert sandbox.stats()["accepted_total"] == 300


def test_pause_stops_new_requests_within_a_second_even_mid_batch(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable, db: Db
) -> None:
    # Batches of 150 take ~3 s at this rate: only the worker's check of the campaign's pause
    # key, not the claim, can stop them within a second.
    settings, campaign_id = _start_campaign(settings, sandbox, run_worker, db, batch_size=150)

    pause_campaign(settings, campaign_id, "operator test", sessions=db.sessions, actor="tester")

    before, after = _requests_stop(sandbox, after=1.0, quiet=1.0)
    assert before == after, f"{after - before} requests more than 1 s after the pause"
    wait_until(lambda: "sending" not in _by_status(db, campaign_id), timeout=5)
    assert set(_by_status(db, campaign_id)) == {"sent", "pending"}

    resume_campaign(settings, campaign_id, sessions=db.sessions, actor="tester")
    wait_until(lambda: db.campaign(campaign_id).status == "completed", timeout=15)
    _assert_each_recipient_accepted_once(sandbox, db, campaign_id)
    assert sandbox.stats()["accepted_total"] == 300


def test_cancel_mid_campaign_leaves_every_message_sent_or_cancelled(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable, db: Db
) -> None:
    settings, campaign_id = _start_campaign(settings, sandbox, run_worker, db, batch_size=20)

    result = cancel_campaign(settings, campaign_id, sessions=db.sessions, actor="tester")

    assert result.cancelled_messages > 0
    wait_until(lambda: "sending" not in _by_status(db, campaign_id), timeout=5)
    before, after = _requests_stop(sandbox, after=0.2, quiet=1.0)
    assert before == after, "requests went on after the cancel"
    counts = _by_status(db, campaign_id)
    assert set(counts) == {"sent", "cancelled"}, counts
    assert counts["sent"] + counts["cancelled"] == 300
    assert counts["sent"] == sandbox.stats()["accepted_total"]
    _assert_each_recipient_accepted_once(sandbox, db, campaign_id)
    assert db.campaign(campaign_id).status == "cancelled"


# --- CLI --------------------------------------------------------------------------------------


@pytest.fixture
def cli_settings(pg_database: str, redis_prefix: str) -> Settings:
    """PostgreSQL and Redis, no worker: nothing is sent."""
    return make_settings(pg_database, redis_prefix, "http://127.0.0.1:9", batch_size=5)


@pytest.fixture
def cli_sessions(cli_settings: Settings) -> Iterator[sessionmaker[Session]]:
    reader = Db(cli_settings)
    yield reader.sessions
    reader.close()


def run(settings: Settings, *args: str, stdin: str | None = None) -> Result:
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("STICKERQ_")}
    env.update(settings.as_environment())
    env["COLUMNS"] = "200"
    return CliRunner().invoke(app, ["campaigns", *args], env=env, input=stdin)


def assert_exit(result: Result, code: int) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["list", "show", "pause", "resume", "cancel"])
def test_every_campaigns_command_has_help_naming_its_json_keys(command: str) -> None:
    result = CliRunner().invoke(app, ["campaigns", command, "--help"], env={"COLUMNS": "200"})
    assert_exit(result, 0)
    assert f"campaigns {command} [OPTIONS]" in result.output
    assert "--json" in result.output
    assert "campaign_id" in result.output


def test_cli_list_shows_a_table_and_json_with_scheduled_times_in_zone_and_utc(
    cli_settings: Settings, cli_sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(cli_settings, cli_sessions, count=3)
    set_campaign(
        cli_sessions, campaign_id, status="scheduled", timezone="Asia/Kolkata",
        scheduled_at=datetime(2030, 6, 1, 4, 0, tzinfo=UTC),
    )  # fmt: skip
    other = new_campaign(cli_settings, cli_sessions, count=2)

    table = run(cli_settings, "list", "--status", "scheduled")
    assert_exit(table, 0)
    assert "2030-06-01 09:30 IST (Asia/Kolkata)" in table.stdout
    assert "2030-06-01 04:00:00 UTC" in table.stdout

    document = json.loads(run(cli_settings, "list", "--json").stdout)
    assert [row["campaign_id"] for row in document] == [other, campaign_id]
    assert set(document[0]) == {
        "campaign_id", "name", "status", "sender", "recipients", "scheduled_at_utc",
        "scheduled_at_local", "timezone", "created_at", "pause_reason",
    }  # fmt: skip
    assert document[1]["scheduled_at_local"] == "2030-06-01T09:30:00+05:30"
    assert len(json.loads(run(cli_settings, "list", "--limit", "1", "--json").stdout)) == 1

    bad = run(cli_settings, "list", "--status", "done")
    assert_exit(bad, 2)
    assert "unknown campaign status 'done'" in bad.stderr


def test_cli_list_fits_80_columns_with_nothing_cut(
    cli_settings: Settings, cli_sessions: sessionmaker[Session]
) -> None:
    scheduled = new_campaign(cli_settings, cli_sessions, count=3)
    set_campaign(
        cli_sessions, scheduled, status="scheduled", timezone="Asia/Kolkata",
        scheduled_at=datetime(2030, 6, 1, 4, 0, tzinfo=UTC),
    )  # fmt: skip
    offset_only = new_campaign(cli_settings, cli_sessions, count=1)  # send --at ...+05:30
    set_campaign(
        cli_sessions, offset_only, status="scheduled", timezone="+05:30",
        scheduled_at=datetime(2030, 6, 2, 4, 0, tzinfo=UTC),
    )  # fmt: skip
    new_campaign(cli_settings, cli_sessions, count=2)
    env = {**{k: None for k in os.environ if k.startswith("STICKERQ_")}}
    env.update(cli_settings.as_environment(), COLUMNS="80")

    table = CliRunner().invoke(app, ["campaigns", "list"], env=env)

    assert_exit(table, 0)
    assert all(len(line) <= 80 for line in table.stdout.splitlines())
    assert "…" not in table.stdout  # no cell cut short
    assert "2030-06-01 09:30 +0530" in table.stdout
    assert "2030-06-02 09:30 +0530" in table.stdout  # a fixed offset, not shown as UTC
    assert cli_settings.sender in table.stdout


def test_cli_show_prints_fields_and_counts_and_exits_2_for_a_missing_campaign(
    cli_settings: Settings, cli_sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(cli_settings, cli_sessions, count=3)

    table = run(cli_settings, "show", str(campaign_id))
    assert_exit(table, 0)
    assert STICKER_ID in table.stdout
    assert "pending" in table.stdout

    document = json.loads(run(cli_settings, "show", str(campaign_id), "--json").stdout)
    assert document["progress"]["by_status"] == {"pending": 3}

    missing = run(cli_settings, "show", "999")
    assert_exit(missing, 2)
    assert "no campaign 999" in missing.stderr


def test_cli_pause_resume_and_their_refusals(
    cli_settings: Settings, cli_sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(cli_settings, cli_sessions, count=3)

    paused = run(cli_settings, "pause", str(campaign_id), "--reason", "wrong sticker")
    assert_exit(paused, 0)
    assert f"campaign {campaign_id} paused: wrong sticker" in paused.stdout
    again = run(cli_settings, "pause", str(campaign_id), "--json")
    assert_exit(again, 0)
    assert json.loads(again.stdout) == {
        "campaign_id": campaign_id, "action": "pause", "status": "paused", "changed": False,
        "message": f"campaign {campaign_id} is already paused (wrong sticker); nothing changed",
        "batches": 0, "cancelled_messages": 0, "warnings": [],
    }  # fmt: skip

    resumed = run(cli_settings, "resume", str(campaign_id))
    assert_exit(resumed, 0)
    assert f"campaign {campaign_id} resumed (queued); 1 batch(es) dispatched" in resumed.stdout

    set_campaign(cli_sessions, campaign_id, status="completed")
    refused = run(cli_settings, "pause", str(campaign_id))
    assert_exit(refused, 2)
    assert f"campaign {campaign_id} is completed; only queued, running or paused" in (
        refused.stderr.replace("\n", " ")
    )
    assert_exit(run(cli_settings, "resume", str(campaign_id)), 2)


def test_cli_cancel_asks_first_unless_yes(
    cli_settings: Settings, cli_sessions: sessionmaker[Session]
) -> None:
    campaign_id = new_campaign(cli_settings, cli_sessions, count=3)

    declined = run(cli_settings, "cancel", str(campaign_id), stdin="n\n")
    assert_exit(declined, 2)
    assert "3 message(s) not yet sent" in declined.stderr
    assert campaign(cli_sessions, campaign_id).status == "queued"

    confirmed = run(cli_settings, "cancel", str(campaign_id), stdin="y\n")
    assert_exit(confirmed, 0)
    assert f"campaign {campaign_id} cancelled: 3 unsent message(s) cancelled" in confirmed.stdout
    assert statuses(cli_sessions, campaign_id) == ["cancelled"] * 3

    other = new_campaign(cli_settings, cli_sessions, count=2)
    as_json = run(cli_settings, "cancel", str(other), "--yes", "--json")
    assert_exit(as_json, 0)
    document = json.loads(as_json.stdout)
    assert (document["status"], document["cancelled_messages"]) == ("cancelled", 2)

    set_campaign(cli_sessions, other, status="completed")
    refused = run(cli_settings, "cancel", str(other), "--yes")
    assert_exit(refused, 2)
    assert "only scheduled, queued, running or paused campaigns can be cancelled" in (
        refused.stderr.replace("\n", " ")
    )
