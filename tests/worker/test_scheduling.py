"""Beat's scheduling: due campaigns are dispatched exactly once (two dispatchers at once, two
beats at once), recurring runs are created once with the template's frozen audience, cron
times across DST, and a real worker + beat sending a campaign within seconds of its time."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.cron import next_run
from stickerq.models import Campaign, Message, Schedule, utcnow
from stickerq.pauses import campaign_senders
from stickerq.producer.request import CampaignRequest
from stickerq.producer.schedule import create_schedule, schedule_campaign
from stickerq.queue import SEND_BATCH, configure_celery
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import CampaignStatus
from stickerq.worker.scheduling import dispatch_due_campaigns, run_due_schedules
from tests.conftest import SENDER, STICKER_ID, make_settings, wait_until
from tests.helpers import Db
from tests.queued import queued_bodies

UNREACHABLE_API = "http://127.0.0.1:9"  # no worker runs in the unit tests: nothing is sent
BERLIN = ZoneInfo("Europe/Berlin")
T = TypeVar("T")


def numbers(start: int, count: int) -> list[str]:
    return [f"+91981234{n:04d}" for n in range(start, start + count)]


@pytest.fixture
def beat_settings(database_url: str, redis_prefix: str) -> Settings:
    settings = make_settings(database_url, redis_prefix, UNREACHABLE_API, batch_size=2)
    configure_celery(settings)  # tasks go to this test's queue
    return settings


def published(settings: Settings) -> list[tuple[int, list[int]]]:
    """The send_batch tasks in the test's queue: (campaign id, message ids)."""
    client = redis.Redis.from_url(settings.redis_url)
    tasks = []
    for raw in queued_bodies(client, settings.redis_prefix):
        envelope = json.loads(raw)
        assert envelope["headers"]["task"] == SEND_BATCH
        campaign_id, ids = json.loads(base64.b64decode(envelope["body"]))[0]
        tasks.append((campaign_id, ids))
    return tasks


def due_campaign(settings: Settings, sessions: sessionmaker[Session], to: list[str]) -> int:
    """A campaign scheduled for a moment already past (--now-if-past makes it now)."""
    return schedule_campaign(
        settings,
        CampaignRequest(sticker_id=STICKER_ID, to=",".join(to)),
        at=utcnow() - timedelta(minutes=1),
        now_if_past=True,
        sessions=sessions,
    ).campaign_id


def at_once(call: Callable[[], T], times: int = 2) -> list[T]:
    """Run `call` in that many threads released together; their results in thread order."""
    barrier = threading.Barrier(times)
    results: list[Any] = [None] * times

    def run(index: int) -> None:
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def status_of(sessions: sessionmaker[Session], campaign_id: int) -> str:
    with sessions() as session:
        return session.scalars(select(Campaign.status).where(Campaign.id == campaign_id)).one()


# --- dispatching due campaigns ----------------------------------------------------------


def test_due_campaign_is_queued_and_published_once_and_a_future_one_waits(
    beat_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    due = due_campaign(beat_settings, sessions, numbers(0, 3))
    future = schedule_campaign(
        beat_settings,
        CampaignRequest(sticker_id=STICKER_ID, to=numbers(10, 1)[0]),
        at=utcnow() + timedelta(hours=1),
        sessions=sessions,
    ).campaign_id

    assert dispatch_due_campaigns(sessions, beat_settings.batch_size) == [due]
    assert dispatch_due_campaigns(sessions, beat_settings.batch_size) == []
    assert (status_of(sessions, due), status_of(sessions, future)) == ("queued", "scheduled")
    tasks = published(beat_settings)
    assert [campaign for campaign, _ in tasks] == [due, due]  # 3 ids in batches of 2
    with sessions() as session:
        ids = session.scalars(select(Message.id).where(Message.campaign_id == due)).all()
    assert sorted(pk for _, batch in tasks for pk in batch) == sorted(ids)


def test_two_dispatchers_at_once_dispatch_each_due_campaign_exactly_once(
    beat_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    due = [due_campaign(beat_settings, sessions, numbers(10 * n, 3)) for n in range(6)]

    first, second = at_once(lambda: dispatch_due_campaigns(sessions, beat_settings.batch_size))

    assert sorted(first + second) == due  # each one by exactly one of them
    tasks = published(beat_settings)
    assert sorted(campaign for campaign, _ in tasks) == sorted(due * 2)
    assert len({pk for _, batch in tasks for pk in batch}) == 18 == sum(len(b) for _, b in tasks)


# --- recurring runs ---------------------------------------------------------------------


def make_schedule(settings: Settings, sessions: sessionmaker[Session], next_run_at: datetime):
    """A daily schedule whose next run is made due at `next_run_at`; (schedule, template)."""
    made = create_schedule(
        settings,
        CampaignRequest(
            sticker_id=STICKER_ID,
            to=",".join(numbers(0, 3)),
            ref="daily",
            ref2="v2",
            name="morning sticker",
        ),
        every="0 9 * * *",
        tz="Asia/Kolkata",
        sessions=sessions,
    )
    with sessions.begin() as session:
        session.execute(
            update(Schedule).where(Schedule.id == made.schedule_id).values(next_run_at=next_run_at)
        )
    return made.schedule_id, made.campaign_id


def runs_of(sessions: sessionmaker[Session], schedule_id: int) -> list[Campaign]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Campaign).where(Campaign.schedule_id == schedule_id).order_by(Campaign.id)
            )
        )


def recipients_of(sessions: sessionmaker[Session], campaign_id: int) -> list[tuple]:
    with sessions() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(Message.recipient, Message.ref, Message.ref1, Message.ref2, Message.status)
                .where(Message.campaign_id == campaign_id)
                .order_by(Message.recipient)
            )
        ]


def test_due_schedule_creates_one_run_with_the_templates_audience_even_from_two_beats(
    beat_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    due_at = (utcnow() - timedelta(seconds=30)).replace(microsecond=0)
    schedule_id, template = make_schedule(beat_settings, sessions, due_at)

    first, second = at_once(lambda: run_due_schedules(sessions))
    assert run_due_schedules(sessions) == []

    created = first + second
    assert len(created) == 1
    [run] = created
    run_row = next(c for c in runs_of(sessions, schedule_id) if c.id == run)
    assert run_row.status == CampaignStatus.SCHEDULED
    assert run_row.scheduled_at is not None and due_at <= run_row.scheduled_at <= utcnow()
    assert (run_row.timezone, run_row.name, run_row.recipient_count) == (
        "Asia/Kolkata",
        "morning sticker",
        3,
    )
    assert recipients_of(sessions, run) == recipients_of(sessions, template)
    assert recipients_of(sessions, run)[0][1:] == ("daily", None, "v2", "pending")
    with sessions() as session:
        schedule = session.get(Schedule, schedule_id)
    assert schedule is not None and schedule.next_run_at is not None
    assert schedule.next_run_at > utcnow()
    assert schedule.next_run_at.astimezone(ZoneInfo("Asia/Kolkata")).hour == 9

    # The run is an ordinary scheduled campaign: the next dispatch sends it (the template,
    # the first run, is still hours ahead).
    assert dispatch_due_campaigns(sessions, beat_settings.batch_size) == [run]
    assert status_of(sessions, template) == "scheduled"


def test_missed_runs_are_not_caught_up_one_by_one(
    beat_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    schedule_id, _ = make_schedule(beat_settings, sessions, utcnow() - timedelta(days=3))

    [run] = run_due_schedules(sessions)

    [row] = [c for c in runs_of(sessions, schedule_id) if c.id == run]
    assert row.scheduled_at is not None
    assert utcnow() - timedelta(days=1) < row.scheduled_at <= utcnow()  # the latest one
    assert row.scheduled_at.astimezone(ZoneInfo("Asia/Kolkata")).hour == 9
    assert run_due_schedules(sessions) == []


def test_stopped_schedule_or_one_without_template_creates_no_run(
    beat_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    stopped, _ = make_schedule(beat_settings, sessions, utcnow() - timedelta(minutes=1))
    orphan, _ = make_schedule(beat_settings, sessions, utcnow() - timedelta(minutes=1))
    with sessions.begin() as session:
        session.execute(update(Schedule).where(Schedule.id == stopped).values(active=False))
        session.execute(
            update(Schedule).where(Schedule.id == orphan).values(template_campaign_id=999)
        )

    assert run_due_schedules(sessions) == []
    with sessions() as session:
        assert session.scalars(select(Schedule.active).order_by(Schedule.id)).all() == [
            False,
            False,
        ]
    assert len(runs_of(sessions, stopped)) == len(runs_of(sessions, orphan)) == 1  # templates


# --- cron times across DST --------------------------------------------------------------


def local_runs(cron: str, start: datetime, count: int) -> list[str]:
    times, moment = [], start
    for _ in range(count):
        moment = next_run(cron, BERLIN, moment)
        times.append(f"{moment.astimezone(BERLIN):%m-%d %H:%M%z}")
    return times


def test_cron_time_repeated_when_clocks_go_back_runs_once() -> None:
    start = datetime(2030, 10, 26, 12, 0, tzinfo=UTC)
    assert local_runs("30 2 * * *", start, 3) == [
        "10-27 02:30+0200",
        "10-28 02:30+0100",
        "10-29 02:30+0100",
    ]
    hourly = local_runs("0 * * * *", datetime(2030, 10, 26, 22, 30, tzinfo=UTC), 4)
    assert hourly == [
        "10-27 01:00+0200",
        "10-27 02:00+0200",
        "10-27 03:00+0100",
        "10-27 04:00+0100",
    ]


def test_cron_time_skipped_when_clocks_go_forward_runs_just_after_the_jump() -> None:
    start = datetime(2030, 3, 30, 12, 0, tzinfo=UTC)
    assert local_runs("30 2 * * *", start, 2) == ["03-31 03:00+0200", "04-01 02:30+0200"]


# --- end to end: a real worker with a real beat -----------------------------------------


def start_worker(spawn_worker: Callable[..., Path], settings: Settings) -> Path:
    log = spawn_worker(settings, "--beat", "--concurrency", "2")
    wait_until(lambda: "ready." in log.read_text(), timeout=30, interval=0.1)
    return log


def test_beat_sends_a_scheduled_campaign_within_seconds_of_its_time(
    settings: Settings, sandbox: SandboxServer, spawn_worker: Callable[..., Path]
) -> None:
    settings = settings.model_copy(update={"dispatch_interval_seconds": 1.0})
    start_worker(spawn_worker, settings)
    at = (utcnow() + timedelta(seconds=3)).replace(microsecond=0)
    to = numbers(0, 5)
    campaign_id = schedule_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=",".join(to)), at=at, tz="Asia/Kolkata"
    ).campaign_id
    db = Db(settings)
    assert db.campaign(campaign_id).status == CampaignStatus.SCHEDULED

    wait_until(lambda: len(sandbox.accepted()) == 5, timeout=20, interval=0.1)
    first = min(row["at"] for row in sandbox.accepted())
    assert at.timestamp() <= first <= at.timestamp() + 5
    wait_until(lambda: db.campaign(campaign_id).status == CampaignStatus.COMPLETED)
    db.close()


def test_two_beats_at_once_never_dispatch_a_campaign_twice(
    settings: Settings,
    sandbox: SandboxServer,
    spawn_worker: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings.model_copy(update={"dispatch_interval_seconds": 0.5, "batch_size": 3})
    logs = []
    for n in range(2):  # each beat keeps its schedule file in its own temporary directory
        (tmp_path / f"beat-{n}").mkdir()
        monkeypatch.setenv("TMPDIR", str(tmp_path / f"beat-{n}"))
        logs.append(start_worker(spawn_worker, settings))
    at = utcnow() + timedelta(seconds=2)
    campaigns = [
        schedule_campaign(
            settings, CampaignRequest(sticker_id=STICKER_ID, to=",".join(numbers(10 * n, 7))), at=at
        ).campaign_id
        for n in range(4)
    ]

    wait_until(lambda: len(sandbox.accepted()) >= 28, timeout=20, interval=0.1)
    db = Db(settings)
    wait_until(lambda: all(db.settled(c) for c in campaigns))
    stats = sandbox.stats()
    assert stats["accepted_total"] == 28
    assert set(stats["accepted"].values()) == {1}
    for log in logs:  # both beats asked
        assert "stickerq.dispatch_due_campaigns" in log.read_text()
    db.close()


def test_a_worker_on_a_database_never_upgraded_says_so_in_one_line_not_a_traceback(
    settings: Settings, spawn_worker: Callable[..., Path], tmp_path: Path
) -> None:
    empty = f"sqlite:///{tmp_path / 'never-upgraded.db'}"
    settings = settings.model_copy(
        update={
            "database_url": empty,
            "dispatch_interval_seconds": 1.0,
            "sweep_interval_seconds": 1.0,
        }
    )
    log = start_worker(spawn_worker, settings)
    advice = "the database has no stickerq tables (or an old schema): run `stickerq db upgrade`"
    wait_until(lambda: log.read_text().count(advice) >= 4, timeout=30, interval=0.2)
    text = log.read_text()
    assert "Traceback" not in text
    for task in ("sweep", "dispatch of due retries", "dispatch of due campaigns"):
        assert f"{task} skipped: {advice}" in text


def test_a_worker_with_beat_leaves_no_schedule_files_behind(
    settings: Settings,
    spawn_worker: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))  # the worker's tempfile.gettempdir()
    settings = settings.model_copy(update={"dispatch_interval_seconds": 0.5})
    log = spawn_worker(settings, "--beat", "--loglevel", "DEBUG")
    wait_until(lambda: log.read_text().count("stickerq.dispatch_due[") >= 2, timeout=30)
    left = [path.name for path in temporary.iterdir()]
    # (multiprocessing's own pymp-* folder lives as long as the pool and goes with it)
    assert [name for name in left if not name.startswith("pymp-")] == []


def test_an_idle_worker_logs_its_periodic_tasks_only_at_debug(
    settings: Settings, spawn_worker: Callable[..., Path]
) -> None:
    settings = settings.model_copy(
        update={"dispatch_interval_seconds": 0.5, "sweep_interval_seconds": 0.5}
    )
    quiet = start_worker(spawn_worker, settings)  # at INFO
    verbose = spawn_worker(settings, "--beat", "--loglevel", "DEBUG")
    wait_until(lambda: verbose.read_text().count("DEBUG celery.app.trace: Task stickerq.") >= 6)
    wait_until(lambda: verbose.read_text().count("DEBUG celery.app.trace: Task stickerq.") >= 12)
    for task in ("stickerq.dispatch_due", "stickerq.sweep", "stickerq.dispatch_due_campaigns"):
        for line in quiet.read_text().splitlines():  # the start-up banner names them, once
            assert f"{task}[" not in line and f"({task})" not in line, line
    assert "INFO celery.app.trace: Task stickerq." not in verbose.read_text()


def test_each_run_of_a_schedule_keeps_the_templates_per_row_senders(
    beat_settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    other = "+919000000002"
    path = tmp_path / "replies.csv"
    path.write_text(f"phone,from\n{numbers(0, 1)[0]},{other}\n{numbers(1, 2)[0]},\n")
    made = create_schedule(
        beat_settings,
        CampaignRequest(sticker_id=STICKER_ID, to_file=path),
        every="0 9 * * *",
        tz="Asia/Kolkata",
        sessions=sessions,
    )
    with sessions.begin() as session:
        session.execute(
            update(Schedule)
            .where(Schedule.id == made.schedule_id)
            .values(next_run_at=utcnow() - timedelta(seconds=30))
        )
    [run] = run_due_schedules(sessions)

    def senders(campaign_id: int) -> tuple[bool, list[str], list[str | None]]:
        with sessions() as session:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            per_message = session.scalars(
                select(Message.sender)
                .where(Message.campaign_id == campaign_id)
                .order_by(Message.recipient)
            )
            return campaign.senders_per_row, campaign_senders(session, campaign), list(per_message)

    assert senders(run) == senders(made.campaign_id) == (True, [SENDER, other], [other, None])
