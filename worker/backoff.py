"""The worker's one backoff: capped exponential with full jitter (tenacity's
wait_random_exponential), for every wait before trying again, so that processes hit by the
same failure spread out instead of coming back together."""

from __future__ import annotations

from tenacity import RetryCallState, wait_random_exponential


def backoff(first: float, cap: float) -> wait_random_exponential:
    """Try n waits a random time up to first * 2 ** (n - 1) seconds, never more than cap."""
    return wait_random_exponential(multiplier=first, max=cap)


def backoff_delay(failures: int, first: float, cap: float) -> float:
    """The same wait, for a loop that counts its own failed tries (`failures` >= 1)."""
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = failures
    return backoff(first, cap)(state)
