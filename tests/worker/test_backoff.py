"""The worker's one backoff: exponential bounds, capped, spread by jitter."""

from __future__ import annotations

from stickerq.worker.backoff import backoff_delay


def test_the_bound_doubles_per_failure_up_to_the_cap_and_waits_are_spread() -> None:
    for failures, bound in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 3.2), (7, 5.0), (40, 5.0)]:
        waits = [backoff_delay(failures, 0.1, 5.0) for _ in range(300)]
        assert all(0 <= wait <= bound for wait in waits)
        assert max(waits) > 0.8 * bound and min(waits) < 0.2 * bound  # full jitter
