"""What the dashboard shows, read through the producer's functions (the CLI's and the API's)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from stickerq.db import open_sessions
from stickerq.errors import CampaignNotFound
from stickerq.masking import mask_phone
from stickerq.producer import lifecycle
from stickerq.producer.failures import (
    FAILURE_STATUSES,
    FailureRow,
    SummaryRow,
    campaign_failure_summary,
    failure_examples,
)
from stickerq.producer.operations import list_active_pauses
from stickerq.producer.pace import Pace, PaceTracker
from stickerq.producer.webhooks import disabled_webhooks
from stickerq.settings import Settings
from stickerq.states import CampaignStatus, MessageStatus

CAMPAIGNS_SHOWN = 20  # the newest, beside every active one (up to ACTIVE_SHOWN per status)
ACTIVE_SHOWN = 20
MAX_AGE_SECONDS = 0.8  # every viewer polls each second: they share one read of the database
ACTIVE = (CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.QUEUED)
EXAMPLES_SHOWN = 5  # failed messages listed per campaign and failure status


@dataclass(frozen=True, slots=True)
class CampaignCard:
    details: lifecycle.CampaignDetails
    pace: Pace
    failures: list[SummaryRow] = field(default_factory=list)
    failed_messages: list[FailureRow] = field(default_factory=list)

    @property
    def percent(self) -> float:
        progress = self.details.progress
        return 100.0 * progress.settled / progress.recipients if progress.recipients else 100.0

    @property
    def counts(self) -> list[tuple[str, int]]:
        """Every message status with its count, in the state machine's order."""
        by_status = self.details.progress.by_status
        return [(status.value, by_status.get(status, 0)) for status in MessageStatus]


@dataclass(frozen=True, slots=True)
class Board:
    campaigns: list[CampaignCard]
    pauses: list[dict[str, str]]
    disabled_webhooks: list[dict[str, Any]] = field(default_factory=list)


class BoardReader:
    """The board as read at most MAX_AGE_SECONDS ago, whoever asks; thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pace = PaceTracker()
        self._lock = threading.Lock()
        self._board: Board | None = None
        self._read_at = 0.0

    def read(self) -> Board:
        with self._lock:  # concurrent polls wait for one read instead of making their own
            now = time.monotonic()
            if self._board is None or now - self._read_at > MAX_AGE_SECONDS:
                self._board = read_board(self.settings, self.pace)
                self._read_at = time.monotonic()
            return self._board

    def invalidate(self) -> None:
        """After a button changed something: the next read shows it."""
        with self._lock:
            self._board = None


def of_account(board: Board, account: str | None) -> Board:
    """What a key restricted to `account` sees of the board: its campaigns and pauses only
    (None: everything). The board is read once for every viewer, then cut per viewer."""
    if account is None:
        return board
    cards = [card for card in board.campaigns if card.details.sid == account]
    pauses = [pause for pause in board.pauses if pause["sid"] == account]
    return replace(board, campaigns=cards, pauses=pauses)


def read_board(settings: Settings, pace: PaceTracker) -> Board:
    """The active and the newest campaigns, newest first, with their progress, pace and
    failures; and the pauses in force."""
    cards = []
    with open_sessions(settings.database_url) as sessions:
        shown = {c.campaign_id for c in lifecycle.list_campaigns(sessions, limit=CAMPAIGNS_SHOWN)}
        for active in ACTIVE:  # an old campaign still sending is shown too
            found = lifecycle.list_campaigns(sessions, status=active, limit=ACTIVE_SHOWN)
            shown.update(c.campaign_id for c in found)
        for campaign_id in sorted(shown, reverse=True):
            try:
                details = lifecycle.show_campaign(sessions, campaign_id)
            except CampaignNotFound:
                continue  # deleted between the list and now
            progress = details.progress
            card_pace = pace.observe(progress, details.started_at, details.finished_at)
            summary_rows: list[SummaryRow] = []
            examples: list[FailureRow] = []
            if progress.count(*FAILURE_STATUSES):  # every read here is bounded: it runs each poll
                with sessions() as session:
                    summary_rows = campaign_failure_summary(session, campaign_id)
                    for status in FAILURE_STATUSES:
                        if progress.count(status):
                            examples += failure_examples(
                                session, campaign_id, status, EXAMPLES_SHOWN
                            )
            cards.append(CampaignCard(details, card_pace, summary_rows, examples))
        with sessions() as session:
            disabled = disabled_webhooks(session)
    return Board(cards, list_active_pauses(settings), disabled)


def masked(recipient: str) -> str:
    """Recipients are personal data: shown masked, as `stickerq failures` does by default."""
    return mask_phone(recipient)
