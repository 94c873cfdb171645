"""A campaign's pace from successive reads of its counters: windowed rate and ETA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stickerq.producer.pace import PaceTracker
from stickerq.producer.progress import CampaignProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _progress(settled: int, status: str = "running", recipients: int = 1000) -> CampaignProgress:
    by_status = {"sent": settled, "pending": recipients - settled}
    return CampaignProgress(1, "c", status, "+919000000001", recipients, by_status=by_status)


def test_the_first_read_has_no_pace_then_rate_and_eta_follow_the_counts() -> None:
    clock = Clock()
    tracker = PaceTracker(window_seconds=10, clock=clock)
    first = tracker.observe(_progress(0))
    assert first.rate is None and first.eta_seconds is None
    clock.now += 2
    pace = tracker.observe(_progress(100))
    assert pace.rate == 50.0
    assert pace.eta_seconds == 900 / 50


def test_the_rate_is_over_the_window_only() -> None:
    clock = Clock()
    tracker = PaceTracker(window_seconds=10, clock=clock)
    settled = 0
    for second in range(1, 21):  # 100/s for 10 s, then 10/s for 10 s
        tracker.observe(_progress(settled, recipients=5000))
        clock.now += 1
        settled += 100 if second <= 10 else 10
    pace = tracker.observe(_progress(settled, recipients=5000))
    assert pace.rate == 10.0
    assert pace.eta_seconds == (5000 - 1100) / 10


def test_a_paused_campaign_has_a_rate_falling_to_zero_and_no_eta() -> None:
    clock = Clock()
    tracker = PaceTracker(window_seconds=5, clock=clock)
    tracker.observe(_progress(0))
    clock.now += 1
    tracker.observe(_progress(50))
    for _ in range(7):
        clock.now += 1
        pace = tracker.observe(_progress(50, status="paused"))
    assert pace.rate == 0.0
    assert pace.eta_seconds is None


def test_a_finished_campaign_shows_its_average_from_start_to_finish() -> None:
    tracker = PaceTracker()
    started = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    pace = tracker.observe(
        _progress(1000, status="completed"), started, started + timedelta(seconds=20)
    )
    assert pace.rate == 50.0
    assert pace.eta_seconds is None
