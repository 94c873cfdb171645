"""Every lookup of a message by its Kaleyra message_id uses the partial index
`ix_messages_message_id` (only messages that have one, migration 0015), whatever the
statistics say and whether the plan is custom or generic: each reads only the rows it finds.

The statements are the code's own (callbacks, unknown callbacks, `messages show`), explained
by tests/worker/test_plans.py's probe on a database of CAMPAIGN_SIZE messages, half of them
sent (with a message_id), half still pending (none), with stale then fresh statistics. (With
none at all, on a table never analysed, the custom plans of the callbacks' statements walk
the table with the full index of 0013 as with this one: that is not the index's doing.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import event

from stickerq.db import make_engine, make_session_factory
from stickerq.migrate import upgrade
from stickerq.models import utcnow
from stickerq.producer.callback_payloads import StatusCallback
from stickerq.producer.callbacks import apply_callbacks
from stickerq.producer.failures import message_history, message_history_by_id
from stickerq.producer.unknown_callbacks import apply_unknown
from tests.conftest import own_postgres_database
from tests.worker.test_plans import PLAN_MODES, PlanProbe

CAMPAIGN_SIZE = int(os.environ.get("STICKERQ_TEST_PLAN_SIZE", "100000"))
CALLBACKS = 50


@pytest.fixture(scope="module")
def sent_campaign() -> Iterator[str]:
    with own_postgres_database("stickerq_mid_plans") as url:
        upgrade(url)
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("ALTER TABLE messages SET (autovacuum_enabled = false)")
            campaign_id = db.execute(
                "INSERT INTO campaigns (name, sid, sender, sticker_id, wa_source, status, "
                "created_at, recipient_count, wa400_streak) VALUES ('plans', 'SID', "
                "'+919000000001', '798', 'api', 'running', now(), %s, 0) RETURNING id",
                (CAMPAIGN_SIZE,),
            ).fetchone()[0]  # type: ignore[index]
            # Statistics taken when a tenth of the rows were there: stale, as between two
            # runs of autovacuum's ANALYZE.
            for first, last in ((1, CAMPAIGN_SIZE // 10), (CAMPAIGN_SIZE // 10 + 1, CAMPAIGN_SIZE)):
                db.execute(
                    "INSERT INTO messages (campaign_id, recipient, status, attempts, "
                    "delayed_retries, created_at, message_id, sent_at) SELECT %s, "
                    "'+91' || (8000000000 + g), CASE WHEN g %% 2 = 0 THEN 'sent' ELSE "
                    "'pending' END, 0, 0, now(), CASE WHEN g %% 2 = 0 THEN 'mid-' || g END, "
                    "CASE WHEN g %% 2 = 0 THEN now() END "
                    "FROM generate_series(%s::int, %s::int) AS g",
                    (campaign_id, first, last),
                )
                if first == 1:
                    db.execute("ANALYZE messages")
        yield url


def lookups(url: str, probe: PlanProbe, first: int) -> dict[str, int]:
    """Each lookup by message_id, with the most rows of `messages` it may read."""
    engine = make_engine(url)
    event.listen(engine, "before_cursor_execute", probe.before_execute)
    sessions = make_session_factory(engine)
    bounds: dict[str, int] = {}
    ids = [f"mid-{2 * n}" for n in range(first, first + CALLBACKS)]
    now = utcnow()
    try:
        for status in ("delivered", "read", "failed"):
            with sessions.begin() as session:
                callbacks = [StatusCallback(m, status, now, "131047", "Re-engagement") for m in ids]
                apply_callbacks(session, callbacks)
            bounds[f"callbacks {status}"] = CALLBACKS
        with sessions.begin() as session:
            apply_callbacks(session, [StatusCallback("mid-none", "delivered", now)])
            apply_unknown(session, now)
        bounds["unknown callbacks"] = 1
        with sessions() as session:
            assert len(message_history_by_id(session, ids[0])) == 1
            assert len(message_history(session, ids[1])) == 1
        bounds["messages show"] = 1
    finally:
        engine.dispose()
    return bounds


def test_lookups_by_message_id_read_only_their_rows_in_both_plan_modes(
    sent_campaign: str,
) -> None:
    probe = PlanProbe()
    found: list[tuple[str, int, object]] = []
    for stats, first in (("stale statistics", CAMPAIGN_SIZE // 4), ("fresh", CAMPAIGN_SIZE // 3)):
        if stats == "fresh":
            with psycopg.connect(sent_campaign, autocommit=True) as db:
                db.execute("ANALYZE messages")
        bounds = lookups(sent_campaign, probe, first)
        explained = probe.take()
        assert {e.mode for e in explained} == set(PLAN_MODES)
        bound = max(bounds.values())
        found += [(f"{stats}, {e.mode}", e.rows_read, e.statement[:160]) for e in explained]
        too_many = [f for f in found if f[1] > bound]
        assert not too_many, too_many
        # what found rows found them through the partial index
        assert all("ix_messages_message_id" in str(e.plan) for e in explained if e.rows_read)
