"""A claimed batch whose messages go out from several business numbers (a CSV's `from`
column): one BatchSender per number, each under its own rate, pause and pair guard, so a
WA401 that pauses one number stops only that number's messages."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from stickerq.pauses import PauseRequest
from stickerq.worker.claims import ClaimedMessage
from stickerq.worker.results import MessageResult
from stickerq.worker.sending import BatchOutcome, BatchSender, SendContext


def by_sender(
    claimed: Sequence[ClaimedMessage], campaign_sender: str
) -> dict[str, list[ClaimedMessage]]:
    """The messages by the number they are sent from, in claim order."""
    groups: dict[str, list[ClaimedMessage]] = {}
    for message in claimed:
        groups.setdefault(message.sender or campaign_sender, []).append(message)
    return groups


class SenderGroups:
    """The senders of one batch, seen by its writer as one: results as they come from any
    of them, the pauses they asked for, and one outcome at the end."""

    def __init__(self, senders: Sequence[BatchSender]) -> None:
        self.senders = list(senders)
        self.results_ready = asyncio.Event()
        for sender in self.senders:
            sender.results_ready = self.results_ready
        self._pauses_stored: set[int] = set()  # indexes into senders

    async def send(self, groups: Sequence[list[ClaimedMessage]]) -> BatchOutcome:
        outcomes = await asyncio.gather(
            *(sender.send(messages) for sender, messages in zip(self.senders, groups, strict=True))
        )
        merged = BatchOutcome()
        for outcome in outcomes:
            merged.results.extend(outcome.results)
            merged.unsent.extend(outcome.unsent)
        return merged

    def take_results(self) -> list[MessageResult]:
        self.results_ready.clear()
        return [result for sender in self.senders for result in sender.take_results()]

    def new_pauses(self) -> list[tuple[int, SendContext, PauseRequest]]:
        """Pauses asked for and not yet stored. Read after the results: a sender sets its
        pause before it adds the result that caused it."""
        return [
            (index, sender.ctx, sender.outcome.pause)
            for index, sender in enumerate(self.senders)
            if sender.outcome.pause is not None and index not in self._pauses_stored
        ]

    def pauses_stored(self, indexes: Sequence[int]) -> None:
        self._pauses_stored.update(indexes)

    def halt(self) -> None:
        for sender in self.senders:
            sender.halt()
