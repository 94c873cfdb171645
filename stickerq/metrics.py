"""Prometheus metrics: what the send path and the callbacks receiver count, and the exposition.

Counters and histograms are incremented where things happen (worker/send_metrics.py, the
callbacks receiver through `count_callback`); the gauges read from the database and Redis
are computed at scrape time (stickerq/state_metrics.py). No label carries a phone number, a
secret or a campaign id: every label has a short, fixed set of values (`bounded`).

A prefork worker's children count in prometheus_client's multiprocess mode: each process
writes its values to files in PROMETHEUS_MULTIPROC_DIR, which must be set before
prometheus_client is imported (`stickerq worker --metrics-port` does it); the worker's main
process adds them up on each scrape (`process_metrics`).
"""

from __future__ import annotations

import glob
import hmac
import os
from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client import values as prometheus_values
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from pydantic import SecretStr

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
OTHER = "other"  # a label value outside its known set

MESSAGES = Counter(
    "stickerq_messages",
    "Messages whose send ended in this status (pending: goes again), by Kaleyra code",
    ["outcome", "code"],
)
REQUEST_SECONDS = Histogram(
    "stickerq_kaleyra_request_seconds",
    "Duration of one request to Kaleyra's send API, answered or timed out",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
LIMITER_WAIT_SECONDS = Histogram(
    "stickerq_limiter_wait_seconds",
    "Time a message waited for a request slot and its sender's rate-limit token",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
CLAIMS_IN_FLIGHT = Gauge(
    "stickerq_claims_in_flight",
    "Batches claimed by the worker's processes and not yet settled",
    multiprocess_mode="livesum",
)
CALLBACKS = Counter(
    "stickerq_callbacks",
    "Kaleyra callbacks received, by the status they report (`incoming`: a customer's message "
    "to a business number, for the window ledger)",
    ["status"],
)
CALLBACK_STATUSES = frozenset({"sent", "delivered", "read", "failed", "not-sent", "incoming"})
CALLBACKS_REFUSED = Counter(
    "stickerq_callbacks_refused",
    "Kaleyra status callbacks answered 4xx and not stored (Kaleyra does not send them again), "
    "by why",
    ["reason"],
)
# Why a callback is refused; the README's callbacks section says what each means.
REFUSAL_REASONS = frozenset(
    {
        "invalid_json",  # the body is not JSON (or nested too deep to read)
        "too_large",  # the body is over the receiver's cap
        "too_many",  # an empty list, or more callbacks than one request may carry
        "not_an_object",  # a list item that is not a JSON object
        "no_message_id",
        "unknown_status",  # a status Kaleyra does not send
        "nul_byte",  # a NUL character, which PostgreSQL cannot store in text
        "not_unicode",  # a lone surrogate (\ud800): no database can store it
        "too_long",  # a message_id longer than the column
        "database_refused",  # passed every check, and the database refused it all the same
        "beside_refused",  # sound, but in a request refused for another of its callbacks
        "missing_field",  # an incoming-message callback without from, wanumber, created_at, type
        "invalid_number",  # its from or wanumber is not a phone number
        "invalid_time",  # its created_at is not epoch seconds
    }
)
CALLBACK_TIMES_REPLACED = Counter(
    "stickerq_callback_times_replaced",
    "Status callbacks whose time was not believed (before the message was sent, or in the "
    "future) and was recorded as the time they were received",
    ["reason"],
)
TIME_REPLACED_REASONS = frozenset({"before_sent", "in_future"})
UNKNOWN_CALLBACKS_DROPPED = Counter(
    "stickerq_unknown_callbacks_dropped",
    "Kept callbacks of no known message deleted: older than STICKERQ_UNKNOWN_CALLBACK_DAYS "
    "(expired) or the oldest over STICKERQ_UNKNOWN_CALLBACK_MAX_ROWS (over_cap)",
    ["reason"],
)
DROP_REASONS = frozenset({"expired", "over_cap"})


def bounded(value: str | None, known: Iterable[str]) -> str:
    """A label value from a fixed set: "" for none, OTHER for anything outside `known` (a
    code Kaleyra invents must not make a new time series per value)."""
    if not value:
        return ""
    return value if value in known else OTHER


def count_callback(status: str | None, received: int = 1) -> None:
    """Count `received` Kaleyra callbacks reporting `status` (the receiver calls this)."""
    CALLBACKS.labels(bounded(status, CALLBACK_STATUSES)).inc(received)


def count_refused_callbacks(reason: str, refused: int = 1) -> None:
    """Count `refused` callbacks answered 4xx for `reason` (one of REFUSAL_REASONS)."""
    CALLBACKS_REFUSED.labels(bounded(reason, REFUSAL_REASONS)).inc(refused)


def count_replaced_times(reason: str, replaced: int = 1) -> None:
    """Count callback times not believed, by `reason` (before_sent, in_future)."""
    CALLBACK_TIMES_REPLACED.labels(bounded(reason, TIME_REPLACED_REASONS)).inc(replaced)


def count_dropped_unknown_callbacks(reason: str, dropped: int) -> None:
    """Count unknown callbacks deleted by the purge, by `reason` (expired, over_cap)."""
    UNKNOWN_CALLBACKS_DROPPED.labels(bounded(reason, DROP_REASONS)).inc(dropped)


def multiprocess_mode() -> bool:
    """Whether this process counts in files (PROMETHEUS_MULTIPROC_DIR was set in time)."""
    return bool(prometheus_values.ValueClass.__name__ == "MmapedValue")


def prune_dead_processes(path: str | None = None) -> None:
    """Drop the live gauges of processes that are gone (a killed prefork child): the
    claims it held are no longer in flight here. Counters of dead processes still count."""
    path = path or os.environ[MULTIPROC_DIR]
    for file in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = int(file.rsplit("_", 1)[1].removesuffix(".db"))
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _ThisProcess(Collector):
    """The metrics of this process's default registry (the API's callbacks, an in-process
    worker in tests)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class _AllProcesses(Collector):
    """Every process's metrics, added up from PROMETHEUS_MULTIPROC_DIR at each scrape."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.files = multiprocess.MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        prune_dead_processes(self.path)
        yield from self.files.collect()  # type: ignore[no-untyped-call]


def process_metrics(*extra: Collector) -> CollectorRegistry:
    """A registry of the process's metrics (all processes' in multiprocess mode) and `extra`."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_mode():
        registry.register(_AllProcesses(os.environ[MULTIPROC_DIR]))
    else:
        registry.register(_ThisProcess())
    for collector in extra:
        registry.register(collector)
    return registry


def authorized(authorization: str | None, token: SecretStr) -> bool:
    """Whether a scrape may read /metrics: always when no token is set, else with
    `Authorization: Bearer <token>` (compared in constant time)."""
    expected = token.get_secret_value()
    if not expected:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )
