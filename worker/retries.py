"""The WA500 retry policy, in one place: quick attempts inside a send, then durable delays."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
)

from stickerq.worker.backoff import backoff
from stickerq.worker.outcomes import Action, Outcome


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    quick_attempts: int = 3
    quick_backoff_seconds: float = 0.5
    # Kaleyra's guidance: after the quick attempts, 3 more at 5, 10 and 15 minutes.
    delays_seconds: Sequence[float] = (300.0, 600.0, 900.0)

    def attempts_now(self, delayed_retries: int) -> int:
        """A first send gets the quick attempts; a durable retry is one attempt."""
        return self.quick_attempts if delayed_retries == 0 else 1

    def next_due(self, delayed_retries: int, now: datetime) -> datetime | None:
        """When the next durable retry is due, or None when they are used up."""
        if delayed_retries >= len(self.delays_seconds):
            return None
        return now + timedelta(seconds=self.delays_seconds[delayed_retries])


async def with_quick_retries(
    policy: RetryPolicy, delayed_retries: int, attempt: Callable[[], Awaitable[Outcome]]
) -> Outcome:
    """Run `attempt` until it is not a WA500 or the quick attempts are used up.

    Backoff is exponential with full jitter, so workers hit by the same WA500 burst spread out.
    """
    first = await attempt()
    attempts = policy.attempts_now(delayed_retries)
    if first.action is not Action.RETRY or attempts == 1:
        return first  # most sends: no retry machinery built for them
    replayed = False

    async def first_then_attempt() -> Outcome:
        nonlocal replayed
        if not replayed:  # tenacity's attempt 1 is the one already made
            replayed = True
            return first
        return await attempt()

    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=backoff(policy.quick_backoff_seconds, policy.quick_backoff_seconds * 8),
        retry=retry_if_result(lambda outcome: outcome.action is Action.RETRY),
        retry_error_callback=_last_outcome,
        reraise=True,
    )
    return await retrying(first_then_attempt)


def _last_outcome(state: RetryCallState) -> Outcome:
    """The outcome of the last quick attempt, once they are used up."""
    assert state.outcome is not None  # tenacity calls this after an attempt
    outcome: Outcome = state.outcome.result()
    return outcome
