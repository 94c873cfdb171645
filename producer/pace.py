"""A campaign's pace: messages settled per second lately, and when the rest will have gone.

Measured from successive reads of its counters (producer/progress.py), never by counting its
messages, so a poll costs the same for a campaign of a million. A tracker keeps a few seconds
of (time, settled) samples per campaign in this process: whoever polls (the dashboard, the API)
feeds it, and the first poll of a campaign has no pace yet.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from stickerq.producer.progress import CampaignProgress
from stickerq.states import CampaignStatus

MOVING = frozenset({CampaignStatus.QUEUED, CampaignStatus.RUNNING})
FINISHED = frozenset({CampaignStatus.COMPLETED, CampaignStatus.CANCELLED})
MIN_SPAN_SECONDS = 1.0  # samples closer than this give a pace too noisy to show
MAX_TRACKED = 1000  # campaigns; beyond it the ones not polled for a while are forgotten


@dataclass(frozen=True, slots=True)
class Pace:
    rate: float | None  # messages settled per second (None: not measured yet)
    eta_seconds: float | None  # until every message is settled (None: not moving, or no rate)


class PaceTracker:
    """Samples of each campaign's settled count over the last `window_seconds`; thread-safe."""

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
    ) -> Pace:
        """Record where the campaign stands now and return its pace.

        A finished campaign's rate is its average from start to finish; a moving one's is
        over the window, and its ETA is what is left at that rate."""
        if progress.status in FINISHED:
            self._forget(progress.campaign_id)
            return Pace(_average(progress.settled, started_at, finished_at), None)
        rate = self._windowed(progress.campaign_id, progress.settled)
        left = max(progress.recipients - progress.settled, 0)
        eta = None
        if progress.status in MOVING and rate:
            eta = left / rate
        elif progress.status in MOVING and left == 0:
            eta = 0.0
        return Pace(rate, eta)

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


def _average(settled: int, started_at: datetime | None, finished_at: datetime | None) -> float:
    if started_at is None or finished_at is None or finished_at <= started_at:
        return 0.0
    return settled / (finished_at - started_at).total_seconds()
