"""Throughput: stickerq against a raw-client ceiling and a naive Celery design, same run.

    .venv/bin/python bench/throughput.py [--runs 3] [--recipients 20000] [--latency-ms 100]

One sandbox process (100 ms latency) serves every variant of every run; PostgreSQL and Redis
are the real services, with a database and key prefix of this run's own. Per run:

- ceiling:  a raw aiohttp client in a process of its own, the same requests (URL, headers,
            body) with as many in flight as stickerq's workers have in total; no queue, no
            database. Also at --ceiling-max-concurrency in flight, for information.
- naive:    bench/naive.py, one Celery task per recipient, sync httpx.Client, threads pool 50,
            one commit per message, as a real `celery worker` process.
- stickerq: `stickerq worker` processes (limiter at 100,000/s: it does not bind), from just
            before `enqueue_campaign` to the campaign's `finished_at` (every message settled).

Workers are started and warmed (a small campaign) before the timed part. Prints a table per
run, then the medians and MET/MISSED per target; exits non-zero only on a crash.

`--in-window` (issue 25) measures instead what the claim-time window check costs: per run the
plain campaign and the same campaign with `in_window=True`, alternated, on the same sandbox
and database. Before the runs the window ledger gets --older-windows unrelated pairs (ten
business numbers, windows closed days ago) and an open window for every recipient (both
campaigns send to the same numbers; `record_inbound`, in chunks), then VACUUM ANALYZE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import (
    PY,
    SENDER,
    STICKER_ID,
    Target,
    fmt,
    log,
    mb,
    median,
    median_at,
    print_table,
    print_targets,
)

STICKERQ_STATES = ("sent", "failed", "parked", "unknown", "pending", "sending")
WARM_OFFSET, IDLE_OFFSET = 30_000_000, 20_000_000  # the warm-up's and the idle campaign's
LEDGER_CHUNK = 5_000  # pairs per record_inbound call


def recipients(count: int, offset: int) -> list[str]:
    """Distinct valid Indian mobile numbers (+9198XXXXXXXX)."""
    return [f"+9198{10_000_000 + offset + n:08d}" for n in range(count)]


# --------------------------------------------------------------------------- ceiling


def ceiling_child(url: str, count: int, concurrency: int) -> None:
    """Runs in a child process: `count` requests, `concurrency` in flight, raw aiohttp."""
    import aiohttp
    from common import API_KEY
    from naive import body  # the very body the naive baseline sends

    async def run() -> dict[str, Any]:
        numbers = iter(recipients(count, 50_000_000))
        codes: dict[int, int] = {}
        headers = {
            "Content-Type": "application/json",
            "api-key": API_KEY,
            "cache-control": "no-cache",
        }
        connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def lane() -> None:
                for recipient in numbers:
                    payload = json.dumps(body(recipient, STICKER_ID)).encode()
                    async with session.post(url, data=payload) as response:
                        await response.read()
                        codes[response.status] = codes.get(response.status, 0) + 1

            started = time.perf_counter()
            await asyncio.gather(*(lane() for _ in range(concurrency)))
            seconds = time.perf_counter() - started
        return {
            "seconds": seconds,
            "codes": codes,
            "rate": count / seconds,
            "cpu": time.process_time(),
        }

    print(json.dumps(asyncio.run(run())))


def run_ceiling(sandbox: common.Sandbox, count: int, concurrency: int) -> dict[str, Any]:
    sandbox.reset()
    common.wait_for_quiet()
    meter = common.CpuMeter({"sandbox": [sandbox.process.pid]})
    out = subprocess.run(
        [PY, __file__, "--child-ceiling", sandbox.messages_url(), str(count), str(concurrency)],
        env=common.child_env(),
        capture_output=True,
        check=True,
        timeout=600,
    )
    result = json.loads(out.stdout.decode().strip().splitlines()[-1])
    cpu = meter.stop({"client": result["cpu"]})
    accepted = sandbox.stats()["accepted_total"]
    return {
        "rate": result["rate"],
        "seconds": result["seconds"],
        "accepted": accepted,
        "cpu": cpu,
    }


# --------------------------------------------------------------------------- naive


def run_naive(
    sandbox: common.Sandbox, db_url: str, prefix: str, count: int, run: int, threads: int
) -> dict[str, Any]:
    import naive
    import psycopg

    sandbox.reset()
    naive_prefix = prefix + "naive:"
    env = common.child_env(
        {
            "NAIVE_BROKER_URL": common.REDIS_URL,
            "NAIVE_REDIS_PREFIX": naive_prefix,
            "NAIVE_DATABASE_URL": db_url,
            "NAIVE_SEND_URL": sandbox.messages_url(),
            "NAIVE_API_KEY": common.API_KEY,
            "NAIVE_THREADS": str(threads),
            "PYTHONPATH": os.pathsep.join([str(common.BENCH), str(common.ROOT)]),
        }
    )
    argv = [PY, "-m", "celery", "-A", "naive", "--quiet", "worker", "--pool", "threads"]
    argv += ["--concurrency", str(threads), "-Q", naive.QUEUE, "--loglevel", "WARNING"]
    argv += ["--without-gossip", "--without-mingle"]
    worker = common.spawn(argv, env, f"naive-{run}")
    app = naive.configure(common.REDIS_URL, naive_prefix)
    db = psycopg.connect(db_url, autocommit=True)

    def done(label: str) -> tuple[int, float | None]:
        row = db.execute(
            "SELECT count(*), extract(epoch FROM max(done_at)) FROM naive_messages "
            "WHERE label = %s",
            (label,),
        ).fetchone()
        assert row is not None
        return int(row[0]), float(row[1]) if row[1] is not None else None

    try:
        common.wait_for_celery(app, 1, alive=[worker])
        warm = f"warm-{run}"
        for recipient in recipients(threads * 2, 40_000_000):
            naive.send_sticker.delay(warm, recipient, STICKER_ID)
        common.wait_until(
            lambda: done(warm)[0] >= threads * 2, 60, alive=[worker], what="naive warm-up"
        )
        sandbox.reset()
        label = f"main-{run}"
        numbers = recipients(count, 0)
        common.wait_for_quiet()
        meter = common.CpuMeter({"worker": [worker.pid], "sandbox": [sandbox.process.pid]})
        started = time.time()
        for recipient in numbers:  # what a first design does: .delay() per recipient
            naive.send_sticker.delay(label, recipient, STICKER_ID)
        published = time.time()
        common.wait_until(
            lambda: done(label)[0] >= count,
            timeout=max(300.0, count / 20),
            interval=0.25,
            alive=[worker],
            what="naive: every message committed",
        )
        finished = done(label)[1]
        assert finished is not None
        cpu = meter.stop()
        rss = common.tree_rss([worker.pid])
        stats = sandbox.stats()
    finally:
        db.close()
        common.stop_processes([worker])
    seconds = finished - started
    return {
        "rate": count / seconds,
        "seconds": seconds,
        "publish_seconds": published - started,
        "accepted": stats["accepted_total"],
        "rss_max": rss.max_bytes,
        "rss_sum": rss.sum_bytes,
        "cpu": cpu,
    }


# --------------------------------------------------------------------------- stickerq


class CampaignDb:
    def __init__(self, url: str) -> None:
        import psycopg

        self.db = psycopg.connect(url, autocommit=True)

    def finished_at(self, campaign_id: int) -> float | None:
        row = self.db.execute(
            "SELECT status, extract(epoch FROM finished_at) FROM campaigns WHERE id = %s",
            (campaign_id,),
        ).fetchone()
        if row is None or row[0] != "completed" or row[1] is None:
            return None
        return float(row[1])

    def in_window(self, campaign_id: int) -> bool:
        row = self.db.execute(
            "SELECT in_window FROM campaigns WHERE id = %s", (campaign_id,)
        ).fetchone()
        return bool(row and row[0])

    def counts(self, campaign_id: int) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT status, count(*) FROM messages WHERE campaign_id = %s GROUP BY status",
            (campaign_id,),
        ).fetchall()
        return {status: int(n) for status, n in rows}

    def transactions(self) -> int:
        """Transactions committed in this database so far (every autocommit statement is
        one), as PostgreSQL's statistics have them (each backend reports within a second)."""
        row = self.db.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.db.close()


def warm_recipients(args: Any) -> list[str]:
    """The warm-up campaign's: two batches for each sending process."""
    return recipients(args.batch_size * args.procs * args.concurrency * 2, WARM_OFFSET)


def first_arrival(sandbox: common.Sandbox, timeout: float = 30.0) -> float:
    """The `at` of the first send the sandbox received since its last reset."""
    common.wait_until(lambda: sandbox.stats()["requests"] > 0, timeout, interval=0.02)
    return min(entry["at"] for entry in sandbox.requests())


def run_stickerq(
    sandbox: common.Sandbox,
    db_url: str,
    prefix: str,
    count: int,
    run: int,
    args: Any,
    redis: dict[str, Any] | None = None,
    in_window: bool | None = None,
) -> dict[str, Any]:
    """`redis`: where the workers find Redis (STICKERQ_REDIS_* settings); the bench's own
    Redis by default. `in_window`: True, every campaign is sent only inside its recipients'
    windows (the ledger must hold them open); None, as the settings say (STICKERQ_IN_WINDOW)."""
    from stickerq.producer.api import enqueue_campaign
    from stickerq.producer.request import CampaignRequest
    from stickerq.queue import app, configure_celery

    sandbox.reset()
    settings = common.make_settings(
        db_url,
        prefix,
        sandbox.url,
        **common.worker_settings(args),
        rate_per_second=args.rate,
        **(redis or {}),
    )
    configure_celery(settings)
    workers = common.spawn_stickerq_workers(
        settings, args.procs, args.concurrency, args.pool, tag=f"stickerq-{run}"
    )
    campaigns = CampaignDb(db_url)
    result: dict[str, Any] = {}

    def settle(campaign_id: int, timeout: float) -> float:
        return common.wait_until(
            lambda: campaigns.finished_at(campaign_id),
            timeout,
            interval=0.05,
            alive=workers,
            what=f"campaign {campaign_id} completed",
        )

    def enqueue(numbers: list[str], name: str) -> tuple[int, float, float]:
        path = Path(tempfile.gettempdir()) / f"stickerq-bench-{common.RUN_ID}-{name}.csv"
        if args.from_column:  # per-row senders: rows alternate between the two numbers
            senders = (common.SENDER, common.SENDER_2)
            rows = (f"{n},{senders[i % 2]}\n" for i, n in enumerate(numbers))
            path.write_text("phone,from\n" + "".join(rows), encoding="utf-8")
            request = CampaignRequest(
                sticker_id=STICKER_ID, to_file=path, name=name, in_window=in_window
            )
        else:
            request = CampaignRequest(
                sticker_id=STICKER_ID, to=",".join(numbers), name=name, in_window=in_window
            )
        started = time.time()
        campaign_id = enqueue_campaign(settings, request).campaign_id
        returned = time.time()
        path.unlink(missing_ok=True)
        return campaign_id, started, returned

    try:
        common.wait_for_celery(app, args.procs, alive=workers)
        # Cold: the first campaign these workers see (their send runtime is built lazily).
        campaign_id, _, returned = enqueue(warm_recipients(args), f"warm-{run}")
        result["first_cold"] = first_arrival(sandbox) - returned
        settle(campaign_id, 120)

        sandbox.reset()
        variant = "-in-window" if in_window else ""
        profile = args.profile / f"stickerq-run{run}{variant}" if args.profile else None
        common.wait_for_quiet()
        meter = common.CpuMeter(
            {"worker": [w.pid for w in workers], "sandbox": [sandbox.process.pid]},
            database=db_url.rsplit("/", 1)[1],
        )
        pids = [w.pid for w in workers]
        transactions = campaigns.transactions()
        with common.profiled(pids, profile, args.profile_format, on_cpu=True):
            campaign_id, started, returned = enqueue(recipients(count, 0), f"main-{run}")
            result["enqueue_seconds"] = returned - started
            finished = settle(campaign_id, max(300.0, count / 50))
        result["cpu"] = meter.stop()
        time.sleep(1.5)  # the backends' statistics reach pg_stat_database
        result["transactions"] = campaigns.transactions() - transactions
        if profile is not None and args.profile_format == "raw":
            result["profile_top"] = save_profile_top(profile, pids)
        result["seconds"] = finished - started
        result["rate"] = count / result["seconds"]
        accepted = sandbox.accepted()
        result["first_main"] = min(entry["at"] for entry in accepted) - returned
        result["accepted"] = len(accepted)
        result["duplicates"] = len(accepted) - len({entry["recipient"] for entry in accepted})
        result["counts"] = campaigns.counts(campaign_id)
        result["in_window"] = campaigns.in_window(campaign_id)
        result["rss"] = common.tree_rss([w.pid for w in workers])

        # Immediate: one recipient while the workers are idle and warm.
        time.sleep(0.5)
        sandbox.reset()
        campaign_id, _, returned = enqueue(recipients(1, IDLE_OFFSET), f"one-{run}")
        result["first_idle"] = first_arrival(sandbox) - returned
        settle(campaign_id, 30)
    finally:
        campaigns.close()
        common.stop_processes(workers)
    return result


def save_profile_top(profile: Path, pids: list[int]) -> str:
    """The workers' top 25 functions by cumulative on-CPU share, written beside their raw
    profiles (`<profile>-top25.txt`); returns the text."""
    from profile_top import format_top, top_cumulative

    raws = [Path(common.profile_path(profile, pid, "raw")) for pid in pids]
    text = format_top(*top_cumulative([path for path in raws if path.exists()], 25))
    Path(f"{profile}-top25.txt").write_text(text + "\n", encoding="utf-8")
    log(f"top 25 by cumulative time written to {profile}-top25.txt")
    return text


# --------------------------------------------------------------------------- main


def in_flight_total(args: Any) -> int:
    """How many requests stickerq's workers keep in flight at most, all processes together."""
    per_process = args.in_flight  # one Kaleyra client (pool of in_flight) per sending process
    processes = args.concurrency if args.pool == "prefork" else 1
    return args.procs * processes * per_process


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    common.add_worker_arguments(parser, procs=1, concurrency=2)
    parser.add_argument("--rate", type=float, default=100_000.0, help="limit per sender (/s)")
    parser.add_argument("--naive-threads", type=int, default=50)
    parser.add_argument("--naive-recipients", type=int, default=None, help="default: --recipients")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--from-column",
        action="store_true",
        help="stickerq's campaigns come from a CSV whose `from` column alternates two senders",
    )
    parser.add_argument(
        "--ceiling-concurrency",
        type=int,
        default=None,
        help="in flight for the ceiling (default: stickerq's total in flight)",
    )
    parser.add_argument(
        "--ceiling-max-concurrency",
        type=int,
        default=800,
        help="also measure the raw client at this many in flight (0: skip)",
    )
    parser.add_argument(
        "--no-wait-quiet",
        action="store_true",
        help="do not wait for a nearly idle machine before each timed part",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy record the stickerq workers (on-CPU samples) during the timed campaign "
        "into this folder; raw profiles also give <folder>/stickerq-runN-top25.txt",
    )
    parser.add_argument(
        "--profile-format", default="raw", choices=["flamegraph", "speedscope", "raw"]
    )
    parser.add_argument(
        "--redis-url",
        default=None,
        help="sentinel://h1:26379;...: stickerq alone, through the Sentinels' master against "
        "the same master's direct redis:// URL, alternated (needs --sentinel-master)",
    )
    parser.add_argument("--sentinel-master", default=None, help="the Sentinels' master name")
    parser.add_argument(
        "--in-window",
        action="store_true",
        help="stickerq alone: the campaign plain and with in_window=True (every window open in "
        "the ledger), alternated",
    )
    parser.add_argument(
        "--older-windows",
        type=int,
        default=3_000_000,
        help="unrelated pairs in the window ledger besides the open windows (with --in-window)",
    )
    parser.add_argument("--child-ceiling", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.child_ceiling:
        url, count, concurrency = args.child_ceiling
        ceiling_child(url, int(count), int(concurrency))
        return 0
    common.QUIET["enabled"] = not args.no_wait_quiet
    if args.redis_url:
        return compare_sentinel(args)
    if args.in_window:
        return compare_in_window(args)
    count = args.recipients
    naive_count = args.naive_recipients or count
    ceiling_c = args.ceiling_concurrency or in_flight_total(args)
    print(common.machine_line())
    print(
        f"throughput: {count:,} recipients, sandbox latency {args.latency_ms:g} ms, "
        f"{args.runs} run(s); stickerq: {args.procs} worker(s) x {args.pool} "
        f"{args.concurrency}, in_flight {args.in_flight}, batch {args.batch_size}, "
        f"batches per process {args.batches_per_process}, "
        f"limit {args.rate:,.0f}/s; ceiling: {ceiling_c} in flight"
    )
    runs: list[dict[str, Any]] = []
    with (
        common.bench_database("tp") as db_url,
        common.redis_prefix("tp") as prefix,
    ):
        import naive
        import psycopg

        with psycopg.connect(db_url, autocommit=True) as db:
            db.execute(naive.TABLE_DDL)
        sandbox = common.Sandbox(args.latency_ms)
        print(f"  {sandbox.priority_note}", flush=True)
        try:
            for run in range(1, args.runs + 1):
                figures: dict[str, Any] = {}
                log(f"run {run}: ceiling ({ceiling_c} in flight)")
                figures["ceiling"] = run_ceiling(sandbox, count, ceiling_c)
                if args.ceiling_max_concurrency and args.ceiling_max_concurrency != ceiling_c:
                    log(f"run {run}: raw client at {args.ceiling_max_concurrency} in flight")
                    figures["ceiling_max"] = run_ceiling(
                        sandbox, count, args.ceiling_max_concurrency
                    )
                if not args.skip_naive:
                    log(f"run {run}: naive Celery ({naive_count:,} tasks)")
                    figures["naive"] = run_naive(
                        sandbox, db_url, prefix, naive_count, run, args.naive_threads
                    )
                log(f"run {run}: stickerq")
                figures["stickerq"] = run_stickerq(sandbox, db_url, prefix, count, run, args)
                figures["sandbox_rss"] = sandbox.rss_bytes()
                runs.append(figures)
                print_run(run, figures, ceiling_c, args.ceiling_max_concurrency)
        finally:
            sandbox.stop()
    summarise(runs, args, ceiling_c)
    common.dump_json(args.json, runs)
    return 0


def compare_sentinel(args: Any) -> int:
    """stickerq through the Sentinels' master and through a direct URL to that same master,
    alternated, same database and sandbox: what following a failover costs when none comes."""
    from stickerq.redis_client import Purpose, RedisTarget, make_redis, parse_sentinel_url

    target = RedisTarget(args.redis_url, args.sentinel_master)
    parse_sentinel_url(target.url)  # a wrong URL stops here, saying how to write it
    with make_redis(target, purpose=Purpose.COMMAND) as client:
        host, port = client.connection_pool.get_master_address()
    db = parse_sentinel_url(target.url).db
    variants = {
        "sentinel": {"redis_url": target.url, "redis_sentinel_master": args.sentinel_master},
        "direct": {"redis_url": f"redis://{host}:{port}/{db}"},
    }
    print(common.machine_line())
    print(
        f"throughput through Sentinel: {args.recipients:,} recipients, latency "
        f"{args.latency_ms:g} ms, {args.runs} run(s) of each, alternated; master {host}:{port}"
    )
    rates: dict[str, list[float]] = {name: [] for name in variants}
    with common.bench_database("sn") as db_url, common.redis_prefix("sn") as prefix:
        sandbox = common.Sandbox(args.latency_ms)
        try:
            for run in range(1, args.runs + 1):
                order = list(variants) if run % 2 else list(reversed(variants))
                for name in order:
                    log(f"run {run}: stickerq, {name}")
                    figures = run_stickerq(
                        sandbox, db_url, prefix, args.recipients, run, args, variants[name]
                    )
                    assert figures["duplicates"] == 0, figures
                    rates[name].append(figures["rate"])
                    print(f"  run {run} {name:8} {figures['rate']:,.0f} msg/s", flush=True)
        finally:
            sandbox.stop()
    through, direct = median(rates["sentinel"]), median(rates["direct"])
    rows = [
        [name, fmt(median(values)), ", ".join(fmt(v) for v in values)]
        for name, values in rates.items()
    ]
    print_table("medians", ["redis", "msg/s", "runs"], rows)
    ratio_text = f"{through / direct:.3f} (target >= 0.95)"
    print_targets([Target("through Sentinel / direct", through / direct >= 0.95, ratio_text)])
    common.dump_json(args.json, rates)
    return 0


# --------------------------------------------------------------------------- in-window


def fill_ledger(db_url: str, open_numbers: list[str], older: int) -> dict[str, float]:
    """The window ledger before the timed part: `older` unrelated pairs by INSERT ... SELECT
    (ten business numbers, the campaign's among them; customers +9197..., which no campaign
    here sends to; last written 2-60 days ago, one in 50 shut by a 131047), then an open
    window (written an hour ago) with the campaign's sender for each of `open_numbers`, by
    `record_inbound` as the incoming callbacks write it, then VACUUM ANALYZE."""
    import psycopg

    from stickerq.db import open_sessions
    from stickerq.window_ledger import Inbound, record_inbound

    figures: dict[str, float] = {}
    started = time.monotonic()
    with psycopg.connect(db_url, autocommit=True) as db:
        for first in range(0, older, 1_000_000):
            last = min(older, first + 1_000_000) - 1
            db.execute(
                "INSERT INTO customer_windows "
                "(sender, customer, last_inbound_at, last_type, closed_at) "
                "SELECT '+9190000000' || lpad((n %% 10 + 1)::text, 2, '0'), "
                "'+9197' || lpad((n / 10)::text, 8, '0'), "
                "now() - (172800 + n * 7919 %% 5011200) * interval '1 second', "
                "(ARRAY['text', 'image', 'sticker', 'button'])[1 + n %% 4], "
                "CASE WHEN n %% 50 = 0 THEN now() - interval '1 day' END "
                "FROM generate_series(%s::bigint, %s::bigint) AS n",
                (first, last),
            )
            log(f"ledger: {last + 1:,} of {older:,} older pairs")
        figures["older_seconds"] = time.monotonic() - started
        started = time.monotonic()
        at = datetime.now(UTC) - timedelta(hours=1)
        with open_sessions(db_url) as sessions:
            for first in range(0, len(open_numbers), LEDGER_CHUNK):
                chunk = open_numbers[first : first + LEDGER_CHUNK]
                with sessions.begin() as session:
                    record_inbound(session, (Inbound(SENDER, n, at, "text") for n in chunk))
        figures["open_seconds"] = time.monotonic() - started
        started = time.monotonic()
        db.execute("VACUUM (ANALYZE) customer_windows")
        figures["analyze_seconds"] = time.monotonic() - started
        row = db.execute(
            "SELECT count(*), pg_total_relation_size('customer_windows') FROM customer_windows"
        ).fetchone()
        assert row is not None
        figures["pairs"], figures["bytes"] = int(row[0]), int(row[1])
    return figures


def compare_in_window(args: Any) -> int:
    """The same campaign plain and `in_window=True` (every recipient's window open), alternated
    on the same workers' shape, sandbox and database: what the claim's ledger lookup costs."""
    count = args.recipients
    variants = {"plain": False, "in-window": True}
    print(common.machine_line())
    print(
        f"throughput in-window: {count:,} recipients, sandbox latency {args.latency_ms:g} ms, "
        f"{args.runs} run(s) of each, alternated; stickerq: {args.procs} worker(s) x "
        f"{args.pool} {args.concurrency}, in_flight {args.in_flight}, batch {args.batch_size}"
    )
    runs: list[dict[str, Any]] = []
    with common.bench_database("iw") as db_url, common.redis_prefix("iw") as prefix:
        # the plain campaign's recipients too: it sends to the same; the two are more than
        # the pair interval apart (workers started and warmed between them)
        opened = recipients(count, 0) + warm_recipients(args) + recipients(1, IDLE_OFFSET)
        log(f"ledger: {args.older_windows:,} older pairs, {len(opened):,} open windows")
        ledger = fill_ledger(db_url, opened, args.older_windows)
        print(
            f"  ledger: {ledger['pairs']:,.0f} pairs, {mb(ledger['bytes']):,.0f} MB with its "
            f"indexes; {args.older_windows:,} older pairs in {ledger['older_seconds']:.1f}s, "
            f"{len(opened):,} open windows by record_inbound in {ledger['open_seconds']:.1f}s, "
            f"VACUUM ANALYZE {ledger['analyze_seconds']:.1f}s",
            flush=True,
        )
        sandbox = common.Sandbox(args.latency_ms)
        print(f"  {sandbox.priority_note}", flush=True)
        try:
            for run in range(1, args.runs + 1):
                order = list(variants) if run % 2 else list(reversed(variants))
                figures: dict[str, Any] = {}
                for name in order:
                    log(f"run {run}: stickerq, {name}")
                    figures[name] = run_stickerq(
                        sandbox, db_url, prefix, count, run, args, in_window=variants[name]
                    )
                runs.append(figures)
                print_in_window_run(run, figures, count)
        finally:
            sandbox.stop()
    summarise_in_window(runs, count)
    common.dump_json(args.json, {"ledger": ledger, "runs": runs})
    return 0


def print_in_window_run(run: int, figures: dict[str, Any], count: int) -> None:
    for name, f in figures.items():
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(f["counts"].items()))
        settled = f["counts"] == {"sent": count} and f["accepted"] == count
        warning = "" if settled and not f["duplicates"] else " WARNING: not every message sent once"
        if f["in_window"] != (name == "in-window"):
            warning += f" WARNING: the campaign's in_window is {f['in_window']}"
        print(
            f"  run {run} {name:9} {f['rate']:,.0f} msgs/s ({f['seconds']:.1f}s; {counts}; "
            f"accepted {f['accepted']:,}){warning}\n"
            f"    {common.cpu_line(f['cpu'], f['accepted'] or 1)}",
            flush=True,
        )
    within = figures["in-window"]["rate"] / figures["plain"]["rate"]
    print(f"  run {run} in-window / plain {within:.3f}", flush=True)


def summarise_in_window(runs: list[dict[str, Any]], count: int) -> None:
    ratios = [f["in-window"]["rate"] / f["plain"]["rate"] for f in runs]
    rows = []
    for name in ("plain", "in-window"):
        rates = [f[name]["rate"] for f in runs]

        def per_message(role: str, name: str = name) -> str:
            return fmt(median([f[name]["cpu"][role] * 1000 / count for f in runs]), ".3f")

        rows.append(
            [
                name,
                fmt(median(rates)),
                ", ".join(fmt(r) for r in rates),
                per_message("worker"),
                per_message("postgres"),
            ]
        )
    rows.append(["in-window / plain", fmt(median(ratios), ".3f"),
                 ", ".join(fmt(r, ".3f") for r in ratios), "", ""])  # fmt: skip
    columns = ["variant", "msgs/s", "runs", "worker ms/msg", "postgres ms/msg"]
    print_table(f"medians of {len(runs)} run(s)", columns, rows)
    figure = f"{median(ratios):.3f} x, median of the per-run ratios (target >= 0.95)"
    print_targets([Target("in-window / plain msgs/s, same run", median(ratios) >= 0.95, figure)])


CPU_FIGURES = {
    "worker": "stickerq worker CPU ms per message",
    "client": "raw client CPU ms per request (ceiling)",
    "postgres_db": "PostgreSQL CPU ms per message (this database's backends)",
    "postgres": "PostgreSQL CPU ms per message (every backend, other jobs too)",
    "redis": "Redis CPU ms per message",
}


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def cpu_per_message(f: dict[str, Any]) -> dict[str, float]:
    """Issue 27's CPU figures of one run, in ms per message: stickerq's worker, PostgreSQL
    (this database's backends, and every backend) and Redis during stickerq's campaign; the
    raw client's per request during the ceiling."""
    s, messages = f["stickerq"]["cpu"], f["stickerq"]["accepted"] or 1
    ceiling = f["ceiling"]
    figures = {
        name: s.get(name, float("nan")) * 1000 / messages
        for name in ("worker", "postgres_db", "postgres", "redis")
    }
    figures["client"] = ceiling["cpu"]["client"] * 1000 / (ceiling["accepted"] or 1)
    return figures


def print_run(run: int, f: dict[str, Any], ceiling_c: int, max_c: int) -> None:
    s = f["stickerq"]
    rows = [
        [
            f"ceiling (raw aiohttp, {ceiling_c} in flight)",
            fmt(f["ceiling"]["rate"]),
            fmt(f["ceiling"]["seconds"], ".1f"),
            fmt(f["ceiling"]["accepted"]),
            "-",
        ]
    ]
    if "ceiling_max" in f:
        rows.append(
            [
                f"raw aiohttp, {max_c} in flight (info)",
                fmt(f["ceiling_max"]["rate"]),
                fmt(f["ceiling_max"]["seconds"], ".1f"),
                fmt(f["ceiling_max"]["accepted"]),
                "-",
            ]
        )
    if "naive" in f:
        n = f["naive"]
        rows.append(
            [
                "naive Celery (task/recipient, commit/msg)",
                fmt(n["rate"]),
                fmt(n["seconds"], ".1f"),
                fmt(n["accepted"]),
                f"{mb(n['rss_max']):.0f}",
            ]
        )
    rows.append(
        [
            "stickerq (enqueue → all settled)",
            fmt(s["rate"]),
            fmt(s["seconds"], ".1f"),
            fmt(s["accepted"]),
            f"{mb(s['rss'].max_bytes):.0f} (Σ {mb(s['rss'].sum_bytes):.0f})",
        ]
    )
    print_table(f"run {run}", ["variant", "msgs/s", "seconds", "accepted", "peak RSS MB"], rows)
    counts = ", ".join(f"{k} {v:,}" for k, v in sorted(s["counts"].items()))
    print(
        f"  stickerq: enqueue_campaign {s['enqueue_seconds']:.2f}s; messages: {counts}; "
        f"duplicates at the sandbox {s['duplicates']}; first message after enqueue returned: "
        f"{s['first_main']:+.3f}s (this campaign), {s['first_cold']:+.3f}s (cold workers), "
        f"{s['first_idle']:+.3f}s (1 recipient, idle workers)"
    )
    for name, label in (("ceiling", "ceiling"), ("naive", "naive"), ("stickerq", "stickerq")):
        if name in f:
            print(f"  {label}: {common.cpu_line(f[name]['cpu'], f[name].get('accepted') or 1)}")
    cpu = cpu_per_message(f)
    print(
        f"  CPU ms per message: stickerq worker {cpu['worker']:.3f}, raw client "
        f"{cpu['client']:.3f} per request (worker / client {cpu['worker'] / cpu['client']:.2f}); "
        f"PostgreSQL {cpu['postgres_db']:.3f} (this database's backends; all "
        f"{cpu['postgres']:.3f}), Redis {cpu['redis']:.3f}; PostgreSQL transactions per "
        f"message {s['transactions'] / (s['accepted'] or 1):.2f}"
    )
    if "profile_top" in s:
        print("  workers' hot path, on-CPU samples (py-spy --gil):")
        print("\n".join(f"    {line}" for line in s["profile_top"].splitlines()))
    print(
        f"  stickerq / ceiling {fmt(ratio(s['rate'], f['ceiling']['rate']), '.2f')}, "
        f"stickerq / naive {fmt(ratio(s['rate'], f.get('naive', {}).get('rate')), '.1f')}; "
        f"sandbox peak RSS {mb(f['sandbox_rss']):.0f} MB"
    )


def summarise(runs: list[dict[str, Any]], args: Any, ceiling_c: int) -> None:
    def med(path: tuple[str, ...]) -> float:
        return median_at(runs, *path)

    stickerq = med(("stickerq", "rate"))
    ceiling = med(("ceiling", "rate"))
    naive = med(("naive", "rate"))
    per_run_ratio_c = median([ratio(f["stickerq"]["rate"], f["ceiling"]["rate"]) for f in runs])
    per_run_ratio_n = median(
        [ratio(f["stickerq"]["rate"], f.get("naive", {}).get("rate")) for f in runs]
    )
    rss_max = median([f["stickerq"]["rss"].max_bytes for f in runs])
    rss_sum = median([f["stickerq"]["rss"].sum_bytes for f in runs])
    first = max(
        med(("stickerq", "first_main")),
        med(("stickerq", "first_cold")),
        med(("stickerq", "first_idle")),
    )
    cpu = {name: median([cpu_per_message(f)[name] for f in runs]) for name in CPU_FIGURES}
    cpu_ratio = median([cpu_per_message(f)["worker"] / cpu_per_message(f)["client"] for f in runs])
    rows = [
        ["ceiling msgs/s", fmt(ceiling)],
        ["raw aiohttp at max in flight msgs/s (info)", fmt(med(("ceiling_max", "rate")))],
        ["naive msgs/s", fmt(naive)],
        ["stickerq msgs/s", fmt(stickerq)],
        ["stickerq / ceiling (median of per-run ratios)", fmt(per_run_ratio_c, ".2f")],
        ["stickerq / naive (median of per-run ratios)", fmt(per_run_ratio_n, ".1f")],
        [
            "stickerq / raw aiohttp at max in flight (info)",
            fmt(ratio(stickerq, med(("ceiling_max", "rate"))), ".2f"),
        ],
        *[[label, fmt(cpu[name], ".3f")] for name, label in CPU_FIGURES.items()],
        ["worker CPU per message / client CPU per request", fmt(cpu_ratio, ".2f")],
        ["stickerq worker peak RSS, largest process MB", f"{mb(rss_max):.0f}"],
        ["stickerq worker peak RSS, all processes MB", f"{mb(rss_sum):.0f}"],
        ["naive worker peak RSS MB", fmt(mb(med(("naive", "rss_max"))), ".0f")],
        ["stickerq enqueue_campaign seconds", fmt(med(("stickerq", "enqueue_seconds")), ".2f")],
        ["first message - enqueue returned, main s", fmt(med(("stickerq", "first_main")), "+.3f")],
        ["first message - enqueue returned, cold s", fmt(med(("stickerq", "first_cold")), "+.3f")],
        ["first message - enqueue returned, idle s", fmt(med(("stickerq", "first_idle")), "+.3f")],
    ]
    print_table(f"medians of {len(runs)} run(s)", ["figure", "value"], rows)
    targets = [
        Target("stickerq ≥ 1,000 msgs/s end to end", stickerq >= 1000, f"{stickerq:,.0f} msgs/s"),
        Target(
            f"stickerq ≥ 0.8 x ceiling ({ceiling_c} in flight)",
            per_run_ratio_c >= 0.8,
            f"{per_run_ratio_c:.2f} x ({stickerq:,.0f} / {ceiling:,.0f})",
        ),
        Target(
            "worker CPU per message ≤ 2 x the raw client's per request",
            cpu_ratio <= 2,
            f"{cpu_ratio:.2f} x ({cpu['worker']:.3f} / {cpu['client']:.3f} ms)",
        ),
        Target(
            "PostgreSQL CPU per message ≤ 0.1 ms (this database's backends)",
            cpu["postgres_db"] <= 0.1,
            f"{cpu['postgres_db']:.3f} ms",
        ),
    ]
    if not args.skip_naive:
        targets.append(
            Target(
                "stickerq ≥ 6 x naive",
                per_run_ratio_n >= 6,
                f"{per_run_ratio_n:.1f} x ({stickerq:,.0f} / {naive:,.0f})",
            )
        )
    targets.append(
        Target(
            "first message leaves within 1 s of enqueue returning",
            first <= 1.0,
            f"worst of the medians {first:+.3f} s",
        )
    )
    print_targets(targets)


if __name__ == "__main__":
    sys.exit(main())
