"""What the send path counts (stickerq/metrics.py), from the results it writes.

Counted as a batch's results are written, not in the request's coroutine: a flush of n
results makes one counter increment per (outcome, code) it holds and one histogram
observation per attempt, about a microsecond each (docs/operations.md, Metrics and logs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from stickerq.metrics import MESSAGES, REQUEST_SECONDS, bounded
from stickerq.worker.outcomes import OUTCOME_TABLE
from stickerq.worker.results import MessageResult

# The contract's codes; any other a reply carries is counted as "other".
CODE_LABELS = frozenset({*OUTCOME_TABLE, "WA-401"})


def record_results(results: Iterable[MessageResult]) -> None:
    """Count the written results by outcome and code, and every attempt's duration."""
    outcomes: Counter[tuple[str, str]] = Counter()
    for result in results:
        code = result.attempts[-1].code if result.attempts else result.code
        outcomes[(str(result.status), bounded(code, CODE_LABELS))] += 1
        for attempt in result.attempts:
            if attempt.latency_ms is not None:
                REQUEST_SECONDS.observe(attempt.latency_ms / 1000)
    for (outcome, code), number in outcomes.items():
        MESSAGES.labels(outcome, code).inc(number)
