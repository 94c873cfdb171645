"""Every statement of the send path reads only the rows it acts on, whatever PostgreSQL's
statistics say (none yet, stale, fresh) and whether its plan is custom or generic.

The send path's own functions run against a database of a few hundred thousand messages;
each statement they send to `messages` is first run under EXPLAIN (ANALYZE) in a savepoint,
as a prepared statement with plan_cache_mode `force_custom_plan` and `force_generic_plan`,
and the rows its plan read from `messages` are held against what it may read.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import redis
from psycopg import sql
from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.campaign_status import complete_if_settled
from stickerq.counts import counted_from_rows
from stickerq.db import make_engine, make_session_factory
from stickerq.migrate import upgrade
from stickerq.models import Message, Suppression, utcnow
from stickerq.producer.progress import campaign_progress
from stickerq.states import MessageStatus
from stickerq.window_ledger import Inbound, record_inbound
from stickerq.worker.claims import HeldSenders, cancel_unsent, claim, release
from stickerq.worker.due_retries import take_due_retries
from stickerq.worker.expiry import expire_late, expire_overdue
from stickerq.worker.leaving import record_leaving
from stickerq.worker.results import AttemptRecord, MessageResult, write_results
from stickerq.worker.sender_rates import sender_rate
from stickerq.worker.suppressed import drop_suppressed
from stickerq.worker.sweeper import reopen_campaigns_with_pending, settle_dead_claims
from stickerq.worker.window_check import keep_in_window
from tests.conftest import own_postgres_database

# Messages per campaign (three campaigns); STICKERQ_TEST_PLAN_SIZE=1000000 for the real size.
CAMPAIGN_SIZE = int(os.environ.get("STICKERQ_TEST_PLAN_SIZE", "100000"))
BATCH = 200
PLAN_MODES = ("force_custom_plan", "force_generic_plan")
# The tables whose rows a plan may read only as many of as it acts on.
WATCHED = ("messages", "suppressions", "sender_rates", "customer_windows")
SUPPRESSED_BATCH = 20
# Pairs in the window ledger (issue 25 names 10,000,000: STICKERQ_TEST_LEDGER_SIZE=10000000;
# the plan is the same primary-key lookup at either size).
LEDGER_SIZE = int(os.environ.get("STICKERQ_TEST_LEDGER_SIZE", "500000"))
WINDOW_BATCH = 40


@dataclass
class Explained:
    statement: str
    mode: str
    rows_read: int
    plan: list[Any]


@dataclass
class PlanProbe:
    """Explains each statement on `messages` before it runs, in both plan modes."""

    explained: list[Explained] = field(default_factory=list)
    counter: int = 0
    active: bool = True

    def before_execute(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if not self.active or not any(table in statement for table in WATCHED):
            return
        if isinstance(params, list | tuple):  # an executemany: each set has the same plan
            if not params:
                return
            params = params[0]
        if not statement.lstrip().startswith(("SELECT", "UPDATE", "WITH", "DELETE")):
            return
        names: list[str] = []

        def positional(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        prepared = re.sub(r"%\((\w+)\)s", positional, statement)
        pg: psycopg.Connection[Any] = cursor.connection
        arguments = sql.SQL(", ").join(sql.Literal(params[name]) for name in names)
        for mode in PLAN_MODES:
            self.counter += 1
            name = f"probe_{self.counter}"
            pg.execute("SAVEPOINT probe")
            pg.execute(sql.SQL("SET LOCAL plan_cache_mode = {}").format(sql.SQL(mode)))
            pg.execute(sql.SQL("PREPARE {} AS ").format(sql.Identifier(name)) + sql.SQL(prepared))
            explain = sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {}").format(
                sql.Identifier(name)
            )
            if names:
                explain += sql.SQL("({})").format(arguments)
            plan = pg.execute(explain).fetchone()[0]  # type: ignore[index]
            pg.execute("ROLLBACK TO SAVEPOINT probe")
            pg.execute(sql.SQL("DEALLOCATE {}").format(sql.Identifier(name)))
            self.explained.append(Explained(statement, mode, rows_read(plan), plan))

    def take(self) -> list[Explained]:
        taken, self.explained = self.explained, []
        return taken


def rows_read(plan: Any) -> int:
    """The most rows one scan of a watched table in the plan fetched, kept or filtered out,
    over all its loops. (A statement may scan its rows twice: once to lock them, once to
    update.)"""
    most = 0
    nodes = [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if node.get("Relation Name") in WATCHED and node["Node Type"] != "ModifyTable":
            seen = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            seen += node.get("Rows Removed by Index Recheck", 0)
            most = max(most, int(seen * node["Actual Loops"]))
    return most


@pytest.fixture(scope="module")
def big_database() -> Iterator[str]:
    """A database of this module's own: new, so that its tables start with no statistics."""
    with own_postgres_database("stickerq_plans") as url:
        upgrade(url)
        with psycopg.connect(url, autocommit=True) as db:
            # Statistics change only where this test says so.
            for table in (*WATCHED, "campaigns", "campaign_counts"):
                db.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        yield url


def add_campaign(
    url: str, status: str, message_status: str, size: int = CAMPAIGN_SIZE
) -> tuple[int, int]:
    """A campaign of `size` messages, inserted the way a COPY enqueue leaves them."""
    with psycopg.connect(url, autocommit=True) as db:
        campaign_id = db.execute(
            "INSERT INTO campaigns (name, sid, sender, sticker_id, wa_source, status, "
            "created_at, recipient_count, wa400_streak) VALUES ('plans', 'SID', "
            "'+919000000001', '798', 'api', %s, now(), %s, 0) RETURNING id",
            (status, size),
        ).fetchone()[0]  # type: ignore[index]
        db.execute(
            "INSERT INTO messages (campaign_id, recipient, status, attempts, delayed_retries, "
            "created_at) SELECT %s, '+91' || (8000000000 + %s * 1000000 + g), %s, 0, 0, now() "
            "FROM generate_series(1, %s) AS g",
            (campaign_id, campaign_id, message_status, size),
        )
        first = db.execute(
            "SELECT min(id) FROM messages WHERE campaign_id = %s", (campaign_id,)
        ).fetchone()[0]  # type: ignore[index]
    return campaign_id, first


def suppress_many(url: str) -> None:
    """A suppression list of CAMPAIGN_SIZE numbers on the campaigns' account, none of them
    a recipient: each claim's check probes a big table."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "INSERT INTO suppressions (sid, phone, reason, created_at) "
            "SELECT 'SID', '+44' || (7000000000 + g), 'opted out', now() "
            "FROM generate_series(1, %s) AS g",
            (CAMPAIGN_SIZE,),
        )


def rate_many(url: str) -> None:
    """Sender rates of many numbers, the campaigns' sender among them."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "INSERT INTO sender_rates (sender, rate_per_second, updated_at) "
            "SELECT '+91' || (9000000000 + g), 80, now() FROM generate_series(1, 10000) AS g"
        )


def fill_ledger(url: str) -> None:
    """A window ledger of LEDGER_SIZE pairs of many business numbers, the campaigns' sender
    among them (none of them a recipient): each in-window claim probes a big table."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "INSERT INTO customer_windows (sender, customer, last_inbound_at, last_type) "
            "SELECT '+91900000' || lpad((g %% 1000)::text, 4, '0'), '+44' || (7000000000 + g), "
            "now() - (g %% 86400) * interval '1 second', 'text' "
            "FROM generate_series(1, %s) AS g",
            (LEDGER_SIZE,),
        )


def analyze(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("ANALYZE")


def result(pk: int, status: MessageStatus, **fields: Any) -> MessageResult:
    attempt = AttemptRecord(1, utcnow(), 100.0, 202, None, "sent", None)
    return MessageResult(pk, status, [attempt], 1, 0, **fields)


def send_path(
    sessions: sessionmaker[Session], probe: PlanProbe, campaign_id: int, first: int
) -> dict[str, tuple[list[Explained], int]]:
    """Each step of the send path on one campaign: what it explained, and its row bound."""
    steps: dict[str, tuple[list[Explained], int]] = {}
    ids = list(range(first + CAMPAIGN_SIZE // 2, first + CAMPAIGN_SIZE // 2 + BATCH))
    with sessions.begin() as session:
        claimed = [m.pk for m in claim(session, campaign_id, ids, "T-plans")]
    assert len(claimed) == BATCH
    steps["claim"] = (probe.take(), BATCH)

    # A campaign with per-row senders, one of its numbers paused: the claim tests each
    # locked row's sender, reading no more rows.
    held = HeldSenders("+919000000001", frozenset({"+919000000002"}))
    held_ids = [pk + BATCH for pk in ids]
    with sessions.begin() as session:
        claimed_held = [m.pk for m in claim(session, campaign_id, held_ids, "T-held", held)]
    assert len(claimed_held) == BATCH
    steps["claim, a number paused"] = (probe.take(), BATCH)
    with sessions.begin() as session:
        release(session, campaign_id, "T-held", claimed_held)
    probe.take()

    # The claim reads its sender's rate by primary key.
    with sessions.begin() as session:
        assert sender_rate(session, "+919000000001", 1.0) == 80.0
    steps["sender rate"] = (probe.take(), 1)

    # Another batch, whose every number was suppressed after the enqueue: the check right
    # after the claim makes them `suppressed`, reading only their rows (list and messages).
    others = list(range(first + 10, first + 10 + SUPPRESSED_BATCH))
    with sessions.begin() as session:
        late = claim(session, campaign_id, others, "T-supp")
        session.execute(
            insert(Suppression),
            [{"sid": "SID", "phone": m.recipient, "reason": "STOP"} for m in late],
        )
    probe.take()
    with sessions.begin() as session:
        assert drop_suppressed(session, "SID", "T-supp", late) == []
    steps["suppressed check"] = (probe.take(), SUPPRESSED_BATCH)

    # An in-window campaign's batch: half its recipients wrote an hour ago, half never did.
    # One lookup of the ledger by primary key, and the outside half made `outside_window`.
    window_ids = list(range(first + 40, first + 40 + WINDOW_BATCH))
    with sessions.begin() as session:
        batch = claim(session, campaign_id, window_ids, "T-window")
        an_hour_ago = utcnow() - timedelta(hours=1)
        wrote = [Inbound("+919000000001", m.recipient, an_hour_ago) for m in batch[::2]]
        record_inbound(session, wrote)
    probe.take()
    with sessions.begin() as session:
        inside = keep_in_window(session, "+919000000001", "T-window", batch, 60.0, utcnow())
    assert len(inside) == WINDOW_BATCH // 2
    steps["window check"] = (probe.take(), WINDOW_BATCH)
    with sessions.begin() as session:
        release(session, campaign_id, "T-window", [m.pk for m in inside])
    probe.take()

    retry_at = utcnow() - timedelta(seconds=1)
    results = [result(pk, MessageStatus.SENT, message_id=f"mid-{pk}") for pk in claimed[:140]]
    results += [
        result(pk, MessageStatus.PENDING, code="WA500", next_attempt_at=retry_at)
        for pk in claimed[140:150]
    ]
    with sessions.begin() as session:
        write_results(session, "T-plans", results)
    steps["write results"] = (probe.take(), 150)

    with sessions.begin() as session:
        release(session, campaign_id, "T-plans", claimed[150:190])
    steps["release"] = (probe.take(), 40)

    with sessions.begin() as session:
        complete_if_settled(session, campaign_id)
    steps["completion check"] = (probe.take(), 0)

    with sessions.begin() as session:
        assert len(take_due_retries(session)) == 10
    steps["due retries"] = (probe.take(), 10)

    with sessions.begin() as session:
        assert record_leaving(session.connection(), "T-plans", claimed[190:195]) == set(
            claimed[190:195]
        )
    steps["record leaving"] = (probe.take(), 5)

    # Past the deadline, a batch's pending messages expire by primary key.
    late = list(range(ids[-1] + 1, ids[-1] + 51))
    with sessions.begin() as session:
        assert expire_late(session, campaign_id, late) == 50
    steps["expire late"] = (probe.take(), 50)

    # A batch of a cancelled campaign: its pending messages are cancelled by primary key.
    unsent = list(range(late[-1] + 1, late[-1] + 51))
    with sessions.begin() as session:
        assert cancel_unsent(session, campaign_id, unsent) == 50
    steps["cancel unsent"] = (probe.take(), 50)

    # 10 messages stay `sending` under T-plans, a claim nobody keeps a record of in Redis:
    # the 5 whose leaving was recorded may have left.
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    prefix = f"stickerq-test-plans:{uuid.uuid4().hex[:8]}:"
    report = settle_dead_claims(sessions, client, prefix, grace_seconds=0)
    assert (report.unknown, report.pending) == (5, BATCH - 195)
    reopen_campaigns_with_pending(sessions)
    steps["sweeper"] = (probe.take(), BATCH - 190)

    with sessions() as session:
        progress = campaign_progress(session, campaign_id)
    steps["progress"] = (probe.take(), 0)
    probe.active = False
    with sessions() as session:
        assert progress.by_status == counted_from_rows(session, campaign_id).by_status
    probe.active = True
    return steps


Scenarios = dict[str, dict[str, tuple[list[Explained], int]]]


def send_path_scenarios(url: str, engine_url: str | None = None) -> Scenarios:
    """The send path on the database `url` (new, with no statistics) as its statistics go
    from none to stale to fresh; its statements sent through `engine_url` (default `url`:
    tests/test_pgbouncer.py gives PgBouncer's)."""
    engine = make_engine(engine_url or url)
    probe = PlanProbe()
    event.listen(engine, "before_cursor_execute", probe.before_execute)
    sessions = make_session_factory(engine)
    try:
        add_campaign(url, "completed", "sent")  # an older campaign
        suppress_many(url)
        rate_many(url)
        fill_ledger(url)
        scenarios: Scenarios = {}
        campaign_id, first = add_campaign(url, "running", "pending")
        scenarios["no statistics"] = send_path(sessions, probe, campaign_id, first)
        analyze(url)
        campaign_id, first = add_campaign(url, "running", "pending")
        scenarios["stale statistics"] = send_path(sessions, probe, campaign_id, first)
        analyze(url)
        scenarios["fresh statistics"] = send_path(
            sessions, probe, campaign_id, first + CAMPAIGN_SIZE // 4
        )
    finally:
        engine.dispose()
    return scenarios


def assert_each_statement_read_only_its_rows(scenarios: Scenarios) -> None:
    too_many = [
        f"{scenario}, {step}, {e.mode}: read {e.rows_read} rows of {'/'.join(WATCHED)} "
        f"(bound {bound}): {e.statement[:160]}"
        for scenario, steps in scenarios.items()
        for step, (explained, bound) in steps.items()
        for e in explained
        if e.rows_read > bound
    ]
    assert not too_many, "\n".join(too_many)
    for scenario, steps in scenarios.items():
        for step, (explained, _) in steps.items():
            modes = {e.mode for e in explained}
            assert step == "progress" or modes == set(PLAN_MODES), (scenario, step, explained)
    claims = [e for steps in scenarios.values() for e in steps["claim"][0]]
    # The generic plans were generic: their conditions hold parameters, not values.
    assert all("$1" in str(e.plan) for e in claims if e.mode == "force_generic_plan")


@pytest.mark.timeout(300)
def test_send_path_statements_read_only_their_rows_with_no_stale_or_fresh_statistics(
    big_database: str,
) -> None:
    assert_each_statement_read_only_its_rows(send_path_scenarios(big_database))


@pytest.mark.timeout(300)
def test_the_periodic_expiry_reads_only_the_overdue_campaigns_pending_messages(
    big_database: str,
) -> None:
    """Among campaigns of CAMPAIGN_SIZE messages, a small paused one past its deadline: the
    expiry reads its pending messages and nothing else, in both plan modes."""
    overdue = 1000
    add_campaign(big_database, "running", "pending")  # whatever ran before this test
    campaign_id, _ = add_campaign(big_database, "paused", "pending", overdue)
    with psycopg.connect(big_database, autocommit=True) as db:
        db.execute(
            "UPDATE campaigns SET valid_until = now() - interval '1 second' WHERE id = %s",
            (campaign_id,),
        )
    engine = make_engine(big_database)
    probe = PlanProbe()
    event.listen(engine, "before_cursor_execute", probe.before_execute)
    try:
        assert expire_overdue(make_session_factory(engine)) == overdue
    finally:
        engine.dispose()
    explained = probe.take()
    assert {e.mode for e in explained} == set(PLAN_MODES)
    too_many = [e for e in explained if e.rows_read > overdue]
    assert not too_many, [(e.mode, e.rows_read, e.statement[:160]) for e in too_many]


def test_the_probe_sees_a_claim_that_walks_the_campaign(big_database: str) -> None:
    """The test above can fail: the claim as it was (conditions on messages.status and
    campaign_id, which an index holds) is caught reading the whole campaign."""
    engine = make_engine(big_database)
    probe = PlanProbe()
    event.listen(engine, "before_cursor_execute", probe.before_execute)
    try:
        campaign_id, first = add_campaign(big_database, "running", "pending")
        with engine.begin() as connection:
            connection.execute(
                select(Message.id).where(
                    Message.id.in_(range(first, first + BATCH)),
                    Message.status == MessageStatus.PENDING,
                    Message.campaign_id == campaign_id,
                )
            )
    finally:
        engine.dispose()
    worst = max(e.rows_read for e in probe.take())
    assert worst > BATCH * 10
