"""The global rate limit under load: 3 worker processes, a limit of 200/s per sender.

    .venv/bin/python bench/limit.py [--runs 3] [--recipients 4000] [--limit 200]

Per run, against one sandbox process (100 ms latency) and 3 `stickerq worker --concurrency 1`
processes sharing one Redis and one PostgreSQL database:

- one sender:  a campaign of --recipients from one sender;
- two senders: two campaigns of --recipients each, from two senders, enqueued back to back.

Figures per sender, from the arrival times the sandbox logged (every request counts, retried
or not): the most requests in any 1-second window [t, t+1), the mean rate while its work
remained (requests / (last arrival - the moment its campaign was enqueued), so a sender kept
waiting behind another sender's batches shows), and the mean over its own first-to-last span.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import (
    SENDER,
    SENDER_2,
    STICKER_ID,
    Target,
    fmt,
    log,
    max_in_any_window,
    median,
    print_table,
    print_targets,
)


def recipients(count: int, offset: int) -> str:
    return ",".join(f"+9198{10_000_000 + offset + n:08d}" for n in range(count))


def sender_figures(
    times: list[float], available_at: float, limit: float, finished_at: float | None
) -> dict[str, Any]:
    times = sorted(times)
    count = len(times)
    span = times[-1] - times[0] if count > 1 else 0.0
    return {
        "requests": count,
        "max_window": max_in_any_window(times),
        "mean_while_work": count / (times[-1] - available_at) if count else 0.0,
        "mean_own_span": (count - 1) / span if span > 0 else 0.0,
        "first_after_enqueue": times[0] - available_at if count else None,
        "waited_behind": max(0.0, times[0] - available_at) if count else None,
        "settled_seconds": finished_at - available_at if finished_at else None,
        "limit": limit,
    }


def transit_lags(
    entries: list[dict[str, Any]], sender: str, started: list[tuple[str, Any]]
) -> dict[str, float | None]:
    """Milliseconds from the worker starting a request (its token granted) to the sandbox
    logging its arrival, for recipients tried once: where a window grows on the way."""
    arrived: dict[str, list[float]] = {}
    for entry in entries:
        if entry["sender"] == sender:
            arrived.setdefault(entry["recipient"], []).append(entry["at"])
    tried: dict[str, list[float]] = {}
    for recipient, at in started:
        tried.setdefault(recipient, []).append(float(at))
    lags = sorted(
        (arrived[r][0] - times[0]) * 1000
        for r, times in tried.items()
        if len(times) == 1 and len(arrived.get(r, ())) == 1
    )
    if not lags:
        return {"lag_p50_ms": None, "lag_p99_ms": None, "lag_max_ms": None}
    return {
        "lag_p50_ms": lags[len(lags) // 2],
        "lag_p99_ms": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        "lag_max_ms": lags[-1],
    }


def run_scenario(
    sandbox: common.Sandbox,
    settings: Any,
    db: Any,
    senders: list[str],
    count: int,
    run: int,
    workers: list[Any],
) -> dict[str, dict[str, Any]]:
    from stickerq.producer.api import enqueue_campaign
    from stickerq.producer.request import CampaignRequest

    sandbox.reset()
    common.wait_for_quiet()
    available: dict[str, float] = {}
    campaign_ids: dict[str, int] = {}
    for n, sender in enumerate(senders):
        campaign_ids[sender] = enqueue_campaign(
            settings,
            CampaignRequest(
                sticker_id=STICKER_ID,
                to=recipients(count, n * 1_000_000),
                sender=sender,
                name=f"limit-{run}-{n}",
            ),
        ).campaign_id
        available[sender] = time.time()

    def finished(campaign_id: int) -> float | None:
        row = db.execute(
            "SELECT status, extract(epoch FROM finished_at) FROM campaigns WHERE id = %s",
            (campaign_id,),
        ).fetchone()
        return float(row[1]) if row and row[0] == "completed" and row[1] else None

    timeout = max(120.0, 3 * count / settings.rate_per_second)
    ends = {
        sender: common.wait_until(
            lambda cid=cid: finished(cid),
            timeout,
            interval=0.2,
            alive=workers,
            what=f"campaign {cid} completed",
        )
        for sender, cid in campaign_ids.items()
    }
    arrivals: dict[str, list[float]] = {sender: [] for sender in senders}
    sandbox_entries = sandbox.requests()
    for entry in sandbox_entries:
        arrivals.setdefault(entry["sender"], []).append(entry["at"])
    figures = {}
    for sender in senders:
        figures[sender] = sender_figures(
            arrivals[sender], available[sender], settings.rate_per_second, ends[sender]
        )
        # When the worker took the token and started the request (attempts.started_at): a
        # window above the limit here is the limiter's; only at the sandbox, the transport's.
        started = db.execute(
            "SELECT m.recipient, extract(epoch FROM a.started_at) FROM attempts a "
            "JOIN messages m ON m.id = a.message_pk WHERE m.campaign_id = %s",
            (campaign_ids[sender],),
        ).fetchall()
        figures[sender]["max_window_started"] = max_in_any_window([float(r[1]) for r in started])
        figures[sender].update(transit_lags(sandbox_entries, sender, started))
        accepted = {entry["recipient"] for entry in sandbox.accepted() if entry["sender"] == sender}
        figures[sender]["accepted"] = len(accepted)
    return figures


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--recipients", type=int, default=4000, help="per campaign")
    parser.add_argument("--limit", type=float, default=200.0, help="messages/s per sender")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    common.add_worker_arguments(parser, procs=3, concurrency=1)
    parser.add_argument(
        "--no-wait-quiet",
        action="store_true",
        help="do not wait for a nearly idle machine before each timed part",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    common.QUIET["enabled"] = not args.no_wait_quiet
    import psycopg

    from stickerq.queue import app, configure_celery

    print(common.machine_line())
    print(
        f"limit: {args.limit:g}/s per sender, {args.procs} worker process(es) x {args.pool} "
        f"{args.concurrency}, in_flight {args.in_flight}, batch {args.batch_size}, "
        f"{args.recipients:,} recipients per campaign, sandbox latency {args.latency_ms:g} ms, "
        f"{args.runs} run(s)"
    )
    runs: list[dict[str, Any]] = []
    with (
        common.bench_database("limit") as db_url,
        common.redis_prefix("limit") as prefix,
    ):
        sandbox = common.Sandbox(args.latency_ms)
        print(f"  {sandbox.priority_note}", flush=True)
        db = psycopg.connect(db_url, autocommit=True)
        try:
            settings = common.make_settings(
                db_url,
                prefix,
                sandbox.url,
                rate_per_second=args.limit,
                **common.worker_settings(args),
            )
            configure_celery(settings)
            for run in range(1, args.runs + 1):
                workers = common.spawn_stickerq_workers(
                    settings, args.procs, args.concurrency, args.pool, tag=f"limit-{run}"
                )
                try:
                    common.wait_for_celery(app, args.procs, alive=workers)
                    log(f"run {run}: warm-up")
                    warm_n = max(args.procs * args.concurrency * 2, int(args.limit))
                    run_scenario(sandbox, settings, db, [SENDER], warm_n, run, workers)
                    time.sleep(1.0)  # the bucket goes idle again
                    log(f"run {run}: one sender")
                    one = run_scenario(
                        sandbox, settings, db, [SENDER], args.recipients, run, workers
                    )
                    time.sleep(1.0)
                    log(f"run {run}: two senders")
                    two = run_scenario(
                        sandbox, settings, db, [SENDER, SENDER_2], args.recipients, run, workers
                    )
                finally:
                    common.stop_processes(workers)
                figures = {"one": one[SENDER], "two_a": two[SENDER], "two_b": two[SENDER_2]}
                runs.append(figures)
                print_run(run, figures)
        finally:
            db.close()
            sandbox.stop()
    summarise(runs, args.limit)
    common.dump_json(args.json, runs)
    return 0


LABELS = {
    "one": "one sender",
    "two_a": f"two senders: {SENDER}",
    "two_b": f"two senders: {SENDER_2}",
}
COLUMNS = [
    "scenario",
    "requests",
    "max in 1 s",
    "(at worker)",
    "mean while work remained /s",
    "mean first→last /s",
    "first after enqueue s",
    "settled s",
    "lag p50/p99/max ms",
]


def row(label: str, f: dict[str, Any]) -> list[str]:
    return [
        label,
        fmt(f["requests"]),
        fmt(f["max_window"]),
        fmt(f["max_window_started"]),
        fmt(f["mean_while_work"], ".1f"),
        fmt(f["mean_own_span"], ".1f"),
        fmt(f["first_after_enqueue"], "+.2f"),
        fmt(f["settled_seconds"], ".1f"),
        "/".join(fmt(f[key], ".0f") for key in ("lag_p50_ms", "lag_p99_ms", "lag_max_ms")),
    ]


def print_run(run: int, figures: dict[str, dict[str, Any]]) -> None:
    print_table(f"run {run}", COLUMNS, [row(LABELS[k], f) for k, f in figures.items()])


def summarise(runs: list[dict[str, Any]], limit: float) -> None:
    keys = ("requests", "max_window", "max_window_started", "mean_while_work", "mean_own_span")
    keys += ("first_after_enqueue", "settled_seconds", "lag_p50_ms", "lag_p99_ms", "lag_max_ms")
    medians = {
        scenario: {key: median([r[scenario][key] for r in runs]) for key in keys}
        for scenario in LABELS
    }
    print_table(
        f"medians of {len(runs)} run(s)",
        COLUMNS,
        [row(LABELS[k], f) for k, f in medians.items()],
    )
    ceiling = limit * 1.05 + 1
    targets = []
    for scenario, label in LABELS.items():
        m = medians[scenario]
        targets.append(
            Target(
                f"{label}: no 1-second window above {ceiling:g}",
                max(r[scenario]["max_window"] for r in runs) <= ceiling,
                f"worst {max(r[scenario]['max_window'] for r in runs)}, "
                f"median {m['max_window']:.0f}",
            )
        )
        targets.append(
            Target(
                f"{label}: mean rate while work remained ≥ {0.95 * limit:g}/s",
                m["mean_while_work"] >= 0.95 * limit,
                f"{m['mean_while_work']:.1f}/s (first→last {m['mean_own_span']:.1f}/s)",
            )
        )
    print_targets(targets)


if __name__ == "__main__":
    sys.exit(main())
