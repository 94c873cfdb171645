"""Row readers for assertions: what the database says happened."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from stickerq.counts import campaign_counts, counted_from_rows
from stickerq.db import make_engine, make_session_factory, open_sessions
from stickerq.models import Campaign, Message, Pause, utcnow
from stickerq.producer.failures import AttemptView, histories
from stickerq.settings import Settings
from stickerq.states import UNSETTLED


class Db:
    def __init__(self, settings: Settings) -> None:
        self.engine = make_engine(settings.database_url)
        self.sessions = make_session_factory(self.engine)

    def messages(self, campaign_id: int) -> list[Message]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Message).where(Message.campaign_id == campaign_id).order_by(Message.id)
                )
            )

    def message(self, campaign_id: int, recipient: str) -> Message:
        with self.sessions() as session:
            return session.scalars(
                select(Message).where(
                    Message.campaign_id == campaign_id, Message.recipient == recipient
                )
            ).one()

    def attempts(self, message_pk: int) -> list[AttemptView]:
        """Every attempt of the message, as `messages show` reads them: its `attempts` rows
        and the WA202 send kept on its row."""
        with self.sessions() as session:
            (history,) = histories(session, Message.id == message_pk)
            return history.attempts

    def campaign(self, campaign_id: int) -> Campaign:
        with self.sessions() as session:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            return campaign

    def active_pauses(self) -> list[Pause]:
        with self.sessions() as session:
            return list(session.scalars(select(Pause).where(Pause.resumed_at.is_(None))))

    def settled(self, campaign_id: int) -> bool:
        """Every message left pending/sending (pending ones with a due time still count)."""
        return all(m.status not in UNSETTLED for m in self.messages(campaign_id))

    def unsettled(self, campaign_id: int) -> str:
        """What keeps a campaign from settling, for a failure message: its status and its
        unsettled messages by status, due time and claim."""
        now = utcnow()
        left = Counter(
            (
                m.status,
                "due later" if m.next_attempt_at and m.next_attempt_at > now else "due",
                "claimed" if m.claim_token else "unclaimed",
            )
            for m in self.messages(campaign_id)
            if m.status in UNSETTLED
        )
        return f"campaign {self.campaign(campaign_id).status}, messages {dict(left)}"

    def assert_counters_exact(self, campaign_id: int) -> None:
        """The counters progress reads equal a full count of the campaign's messages."""
        with self.sessions() as session:
            kept = campaign_counts(session, campaign_id)
            counted = counted_from_rows(session, campaign_id)
        assert kept == counted, f"counters {kept} != rows {counted}"

    def count(self, model: type) -> int:
        with self.sessions() as session:
            return len(session.scalars(select(model)).all())

    def close(self) -> None:
        self.engine.dispose()


def stored_counts(settings: Settings) -> tuple[int, int]:
    """(campaign rows, message rows) in the database."""
    with open_sessions(settings.database_url) as sessions, sessions() as session:
        campaigns = session.scalar(select(func.count()).select_from(Campaign))
        messages = session.scalar(select(func.count()).select_from(Message))
    return campaigns or 0, messages or 0
