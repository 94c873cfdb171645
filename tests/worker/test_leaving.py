"""The marks of what may leave (worker/leaving.py), on both backends, and a lost connection."""

from __future__ import annotations

import psycopg
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.db import make_engine, make_session_factory
from stickerq.models import Message
from stickerq.worker.leaving import MarkWriter
from tests.worker.test_claims import claim_in_own_session, stored_campaign


def marked(sessions: sessionmaker[Session], token: str) -> set[int]:
    with sessions() as session:
        rows = session.scalars(select(Message.id).where(Message.leaving_claim_token == token))
        return set(rows)


def test_marks_are_written_for_the_claims_still_ours_only(
    sessions: sessionmaker[Session],
) -> None:
    campaign_id, ids = stored_campaign(sessions, count=6)
    ours = claim_in_own_session(sessions, campaign_id, ids[:3], token="T1")
    other = claim_in_own_session(sessions, campaign_id, ids[3:], token="T2")
    writer = MarkWriter(sessions.kw["bind"])
    try:
        written = writer.write({"T1": ours[:2], "STALE": other})
    finally:
        writer.close()
    assert written == {"T1": set(ours[:2]), "STALE": set()}
    assert marked(sessions, "T1") == set(ours[:2])
    assert marked(sessions, "STALE") == set()


def test_a_lost_connection_is_opened_again_and_the_marks_written(pg_database: str) -> None:
    """PostgreSQL only: there the marks have a connection of their own, which can be lost."""
    engine = make_engine(pg_database)
    sessions = make_session_factory(engine)
    campaign_id, ids = stored_campaign(sessions, count=4)
    claimed = claim_in_own_session(sessions, campaign_id, ids, token="T1")
    writer = MarkWriter(sessions.kw["bind"])
    try:
        writer.write({"T1": claimed[:1]})
        assert writer._connection is not None
        backend = writer._connection.info.backend_pid
        with psycopg.connect(pg_database, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [backend])
        assert writer.write({"T1": claimed[1:]}) == {"T1": set(claimed[1:])}
    finally:
        writer.close()
    assert marked(sessions, "T1") == set(claimed)
    engine.dispose()
