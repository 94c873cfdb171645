"""The worker's one backoff: exponential bounds, capped, spread by jitter."""

from __future__ import annotations

from stickerq.worker.backoff import backoff_delay


def test_the_bound_doubles_per_failure_up_to_the_cap_and_waits_are_spread() -> None:
    for failures, bound in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 3.2), (7, 5.0), (40, 5.0)]:
        waits = [backoff_delay(failures, 0.1, 5.0) for _ in range(300)]
        assert all(0 <= wait <= bound for wait in waits)
        assert max(waits) > 0.8 * bound and min(waits) < 0.2 * bound  # full jitter


def test_the_webhook_wait_is_between_half_and_all_of_its_capped_bound() -> None:
    from stickerq.worker.backoff import half_jitter_delay

    for failures, bound in ((1, 10.0), (2, 20.0), (3, 40.0), (20, 3600.0), (500, 3600.0)):
        waits = [half_jitter_delay(failures, 10.0, 3600.0) for _ in range(200)]
        assert all(bound / 2 <= w <= bound for w in waits), (failures, min(waits), max(waits))
