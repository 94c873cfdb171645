"""The worker's backoff: capped exponential with jitter, for every wait before trying again,
so that processes hit by the same failure spread out instead of coming back together. Full
jitter (tenacity's wait_random_exponential) for the send path; half jitter for webhooks."""

from __future__ import annotations

import random

from tenacity import RetryCallState, wait_random_exponential


def backoff(first: float, cap: float) -> wait_random_exponential:
    """Try n waits a random time up to first * 2 ** (n - 1) seconds, never more than cap."""
    return wait_random_exponential(multiplier=first, max=cap)


def backoff_delay(failures: int, first: float, cap: float) -> float:
    """The same wait, for a loop that counts its own failed tries (`failures` >= 1)."""
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = failures
    return backoff(first, cap)(state)


def half_jitter_delay(failures: int, first: float, cap: float) -> float:
    """A wait that grows for certain: between half and all of min(cap, first * 2 ** (n - 1)).
    For webhook deliveries, where a receiver that is down must not be asked again at once."""
    bound = float(min(cap, first * 2.0 ** min(failures - 1, 64)))
    return bound / 2 + random.uniform(0, bound / 2)
