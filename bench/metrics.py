"""What the metrics cost the send path: CPU per increment and per message.

    .venv/bin/python bench/metrics.py [--runs 3] [--messages 200000]

Runs each figure in a child process, in prometheus_client's two modes: in memory (a worker
with a threads or solo pool, the API) and multiprocess (PROMETHEUS_MULTIPROC_DIR: a prefork
worker with --metrics-port, where every value is written to a memory-mapped file). Per
message, the send path makes one limiter-wait observation and, when a batch's results are
written, one histogram observation per attempt and a share of one counter increment per
(outcome, code) of the flush (worker/send_metrics.py): "per message" measures exactly that,
with flushes of 20 results of one attempt each. Compare with the worker's ~600 us of CPU
per message (bench/throughput.py). No Redis, database or sandbox needed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_SHARE = 1.0  # % of the worker's ~600 us of CPU per message the metrics may take
FLUSH = 20  # results a batch's writer takes at once at full speed (a few ms of answers)


def measure(messages: int) -> dict[str, float]:
    """Nanoseconds of CPU per operation, in this process's mode."""
    from datetime import UTC, datetime

    from stickerq.metrics import LIMITER_WAIT_SECONDS, MESSAGES, REQUEST_SECONDS
    from stickerq.states import MessageStatus
    from stickerq.worker.results import AttemptRecord, MessageResult
    from stickerq.worker.send_metrics import record_results

    child = MESSAGES.labels("sent", "WA202")
    now = datetime.now(UTC)
    results = [
        MessageResult(
            pk=n,
            status=MessageStatus.SENT,
            attempts=[AttemptRecord(1, now, 101.5, 202, "WA202", "sent", None)],
            total_attempts=1,
            delayed_retries=0,
        )
        for n in range(FLUSH)
    ]

    def per_op(operation: object, repeat: int) -> float:
        start = time.process_time()
        for _ in range(repeat):
            operation()  # type: ignore[operator]
        return (time.process_time() - start) / repeat * 1e9

    def limiter_wait() -> None:
        asked = time.perf_counter()
        LIMITER_WAIT_SECONDS.observe(time.perf_counter() - asked)

    figures = {
        "counter inc": per_op(child.inc, messages),
        "counter labels().inc": per_op(lambda: MESSAGES.labels("sent", "WA202").inc(), messages),
        "histogram observe": per_op(lambda: REQUEST_SECONDS.observe(0.1), messages),
        "limiter wait (2 clocks + observe)": per_op(limiter_wait, messages),
    }
    flush = per_op(lambda: record_results(results), messages // FLUSH)
    figures["per message"] = flush / FLUSH + figures["limiter wait (2 clocks + observe)"]
    return figures


def run_child(mode: str, messages: int) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.TemporaryDirectory(prefix="stickerq-bench-metrics-") as folder:
        if mode == "multiprocess":
            env["PROMETHEUS_MULTIPROC_DIR"] = folder
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--messages", str(messages)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    figures: dict[str, float] = json.loads(out)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.messages)))
        return
    for mode in ("in memory", "multiprocess"):
        runs = [run_child(mode, args.messages) for _ in range(args.runs)]
        print(f"\n{mode} ({args.runs} runs, median ns of CPU)")
        for name in runs[0]:
            print(f"  {name:36} {statistics.median(run[name] for run in runs):8.0f}")
        share = statistics.median(run["per message"] for run in runs) / 600_000 * 100
        verdict = "MET" if share <= TARGET_SHARE else "MISSED"
        print(
            f"  {'share of ~600 us per message':36} {share:7.2f}%  {verdict} (<= {TARGET_SHARE}%)"
        )


if __name__ == "__main__":
    main()
