"""A campaign's pace: messages settled per second, and when the rest will have gone.

Read from the campaign's counters (producer/progress.py), never by counting its messages, so
it costs the same for a campaign of a million. One read gives the average since the campaign
started (`campaign_pace`): the one rule of `campaigns show`, `report`, `send --wait`'s bar and
the API, so no two of them disagree. A poller that reads again and again (the dashboard) keeps
a `PaceTracker`, whose rate is over the last seconds of its reads and is the average until its
reads span a second.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from stickerq.models import Campaign, utcnow
from stickerq.producer.progress import GOING, CampaignProgress
from stickerq.states import CampaignStatus, MessageStatus

FINISHED = frozenset({CampaignStatus.COMPLETED, CampaignStatus.CANCELLED})
MIN_SPAN_SECONDS = 1.0  # reads closer than this give a rate too noisy to show
MAX_TRACKED = 1000  # campaigns; beyond it the ones not read for a while are forgotten


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast a campaign goes, and when the rest is done at that rate."""

    rate: float | None  # messages settled per second; None: not started, nothing settled yet
    remaining: int  # messages not yet settled (pending or sending)
    eta: datetime | None  # None: done, not going (paused, held by a pause...) or no rate


def campaign_pace(
    progress: CampaignProgress,
    started_at: datetime | None,
    finished_at: datetime | None,
    now: datetime | None = None,
) -> Pace:
    """The average since the campaign started (to its finish), counting any time it was
    paused; cancelled and expired messages (none sent) are not counted as done."""
    now = now or utcnow()
    done = progress.settled - progress.count(MessageStatus.CANCELLED, MessageStatus.EXPIRED)
    rate = None
    if started_at is not None and done > 0:
        elapsed = ((finished_at or now) - started_at).total_seconds()
        rate = done / elapsed if elapsed > 0 else None
    return _at_rate(progress, rate, now)


def read_pace(session: Session, progress: CampaignProgress, now: datetime | None = None) -> Pace:
    """`campaign_pace` of the campaign `progress` was read for, with its start and finish."""
    started_at, finished_at = session.execute(
        select(Campaign.started_at, Campaign.finished_at).where(Campaign.id == progress.campaign_id)
    ).one()
    return campaign_pace(progress, started_at, finished_at, now)


def _at_rate(progress: CampaignProgress, rate: float | None, now: datetime) -> Pace:
    remaining = max(progress.recipients - progress.settled, 0)
    going = progress.status in GOING and progress.pause is None
    eta = now + timedelta(seconds=remaining / rate) if rate and remaining and going else None
    return Pace(rate, remaining, eta)


class PaceTracker:
    """Each campaign's settled count over the last `window_seconds` of reads; thread-safe."""

    def __init__(
        self, window_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_seconds = window_seconds
        self._clock = clock
        self._samples: dict[int, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def observe(
        self,
        progress: CampaignProgress,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        now: datetime | None = None,
    ) -> Pace:
        """Record where the campaign stands now and return its pace: over the window while it
        moves, its average before the window spans a second and once it has finished."""
        now = now or utcnow()
        if progress.status in FINISHED:
            self._forget(progress.campaign_id)
            return campaign_pace(progress, started_at, finished_at, now)
        rate = self._windowed(progress.campaign_id, progress.settled)
        if rate is None:
            return campaign_pace(progress, started_at, finished_at, now)
        return _at_rate(progress, rate, now)

    def _windowed(self, campaign_id: int, settled: int) -> float | None:
        now = self._clock()
        with self._lock:
            samples = self._samples.get(campaign_id)
            if samples is None:
                if len(self._samples) >= MAX_TRACKED:
                    self._drop_stale(now)
                samples = self._samples[campaign_id] = deque()
            samples.append((now, settled))
            while len(samples) > 2 and samples[1][0] <= now - self.window_seconds:
                samples.popleft()
            first_time, first_settled = samples[0]
        span = now - first_time
        if span < MIN_SPAN_SECONDS:
            return None
        return max(settled - first_settled, 0) / span

    def _forget(self, campaign_id: int) -> None:
        with self._lock:
            self._samples.pop(campaign_id, None)

    def _drop_stale(self, now: float) -> None:
        stale = [
            campaign_id
            for campaign_id, samples in self._samples.items()
            if samples[-1][0] < now - self.window_seconds
        ]
        for campaign_id in stale:
            del self._samples[campaign_id]
