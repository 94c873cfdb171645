"""A campaign's pace from its counters: the average of one read, the window of many."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stickerq.producer.pace import PaceTracker, campaign_pace
from stickerq.producer.progress import CampaignProgress

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _progress(
    settled: int, status: str = "running", recipients: int = 1000, **more: object
) -> CampaignProgress:
    by_status = {"sent": settled, "pending": recipients - settled}
    return CampaignProgress(
        1, "c", status, "+919000000001", recipients, by_status=by_status, **more
    )  # type: ignore[arg-type]


def test_one_read_gives_the_average_since_the_start_and_the_eta_at_it() -> None:
    pace = campaign_pace(_progress(200), NOW - timedelta(seconds=10), None, now=NOW)
    assert (pace.rate, pace.remaining) == (20.0, 800)
    assert pace.eta == NOW + timedelta(seconds=40)


def test_no_eta_before_the_start_while_paused_or_held_by_a_pause() -> None:
    started = NOW - timedelta(seconds=10)
    assert campaign_pace(_progress(0), None, None, now=NOW).eta is None
    assert campaign_pace(_progress(200, status="paused"), started, None, now=NOW).eta is None
    held = _progress(200, pause={"scope": "sender", "code": "WA401"})
    assert campaign_pace(held, started, None, now=NOW).eta is None


def test_the_tracker_starts_from_the_average_then_follows_the_counts() -> None:
    clock = Clock()
    tracker = PaceTracker(window_seconds=10, clock=clock)
    started = NOW - timedelta(seconds=50)
    first = tracker.observe(_progress(100), started, now=NOW)
    assert first.rate == 2.0  # no window yet: 100 in 50 s
    clock.now += 2
    pace = tracker.observe(_progress(200), started, now=NOW)
    assert pace.rate == 50.0
    assert pace.eta == NOW + timedelta(seconds=800 / 50)


def test_the_rate_is_over_the_window_only() -> None:
    clock = Clock()
    tracker = PaceTracker(window_seconds=10, clock=clock)
    settled = 0
    for second in range(1, 21):  # 100/s for 10 s, then 10/s for 10 s
        tracker.observe(_progress(settled, recipients=5000), now=NOW)
        clock.now += 1
        settled += 100 if second <= 10 else 10
    pace = tracker.observe(_progress(settled, recipients=5000), now=NOW)
    assert pace.rate == 10.0
    assert pace.eta == NOW + timedelta(seconds=(5000 - 1100) / 10)


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
    assert pace.eta is None


def test_a_finished_campaign_shows_its_average_from_start_to_finish() -> None:
    tracker = PaceTracker()
    pace = tracker.observe(_progress(1000, status="completed"), NOW, NOW + timedelta(seconds=20))
    assert pace.rate == 50.0
    assert pace.eta is None
