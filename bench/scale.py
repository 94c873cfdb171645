"""Scale: msgs/s end to end as one campaign grows from 20,000 to 1,000,000 recipients.

    .venv/bin/python bench/scale.py [--sizes 20000,100000,1000000] [--backend postgresql]
                                    [--older-campaigns 2000000] [--runs 1] [--latency-ms 100]
    .venv/bin/python bench/scale.py --backend sqlite      # sizes 20000,100000; 200,000 older

For the issue "Flat cost per message as campaigns grow": does a campaign of a million cost
per message what one of twenty thousand does? One sandbox process (100 ms latency), the real
Redis, and a database of this run's own: PostgreSQL (`stickerq_bench_scale_<id>`) or a SQLite
file in a temporary folder, both migrated to head by `stickerq.migrate.upgrade`.

Before the timed part the database gets --older-campaigns messages (and one attempt each) in
a few older, completed campaigns (INSERT ... SELECT over generate_series on PostgreSQL, a
recursive CTE on SQLite), then VACUUM ANALYZE (ANALYZE on SQLite), and again at the start of
every run: the timed campaigns meet a database whose statistics know only older campaigns,
as a real one's do when a new campaign arrives (autovacuum may analyze during a size; the
run's line says when it did).

Per run: `stickerq worker` processes (limiter at 100,000/s: it does not bind) are started
and warmed once, then each size in --sizes, in order, on those same workers: a CSV of that
many distinct valid numbers (written before the timed part) enqueued by
`producer.api.enqueue_campaign(settings, CampaignRequest(to_file=...))`, timed from just
before the call to the campaign's `finished_at` (every message settled). The sandbox's
request log is cleared between sizes (it keeps every request in memory, about 1.3 KB each).
Per size: msgs/s, the enqueue seconds, msgs/s over the smallest size's msgs/s in the same
run, CPU ms per message of the workers, PostgreSQL and the sandbox, and the peak RSS of the
worker processes during that size (VmHWM, reset before each size). Every message's state is
counted once at the end of its size, and the sandbox must have accepted every recipient
exactly once.

Prints a table per run, then the medians and MET/MISSED for the issue's target (1,000,000
at >= 0.9 x the msgs/s of 20,000, ratio taken within a run); exits non-zero only on a crash.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import SENDER, SID, STICKER_ID, Target, fmt, log, mb, median, print_table
from throughput import recipients

DEFAULT_SIZES = {"postgresql": "20000,100000,1000000", "sqlite": "20000,100000"}
DEFAULT_OLDER = {"postgresql": 2_000_000, "sqlite": 200_000}
ISSUE_SMALL, ISSUE_LARGE, ISSUE_RATIO = 20_000, 1_000_000, 0.9
OLDER_PER_CAMPAIGN = 250_000  # older messages per older campaign, at most
SANDBOX_BYTES_PER_REQUEST = 1_300  # request log + accepted list + counter, measured
WARM_OFFSET = 30_000_000  # recipients of the warm-up campaign: apart from every size's


# --------------------------------------------------------------------------- database


@contextlib.contextmanager
def scale_database(backend: str) -> Iterator[str]:
    """A database of this run's own, migrated to head, removed at the end."""
    if backend == "postgresql":
        with common.bench_database("scale") as url:
            yield url
        return
    from stickerq.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix=f"stickerq-bench-scale-{common.RUN_ID}-") as folder:
        url = f"sqlite:///{folder}/stickerq.db"
        upgrade(url)
        yield url


class ScaleDb:
    """The benchmark's own reads and writes, on either backend (SQLAlchemy Core).

    On SQLite it is a plain engine, not stickerq's: that one opens every transaction with
    BEGIN IMMEDIATE, and a poll would then take the write lock from the workers.
    """

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        from stickerq.db import make_engine

        self.backend = "postgresql" if url.startswith("postgresql") else "sqlite"
        if self.backend == "sqlite":
            self.engine = create_engine(url)
            with self.engine.connect() as conn:
                # WAL before any worker connects: it cannot switch while others are connected.
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        else:
            self.engine = make_engine(url)

    def finished_at(self, campaign_id: int) -> float | None:
        """The campaign's `finished_at` (epoch seconds) once completed: one row by key."""
        from sqlalchemy import select

        from stickerq.models import Campaign

        with self.engine.connect() as conn:
            row = conn.execute(
                select(Campaign.status, Campaign.finished_at).where(Campaign.id == campaign_id)
            ).one_or_none()
        if row is None or row.status != "completed" or row.finished_at is None:
            return None
        return float(row.finished_at.timestamp())

    def counts(self, campaign_id: int) -> dict[str, int]:
        """Messages of the campaign per state: counted once, at the end of a size."""
        from sqlalchemy import func, select

        from stickerq.models import Message

        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Message.status, func.count())
                .where(Message.campaign_id == campaign_id)
                .group_by(Message.status)
            ).all()
        return {status: int(n) for status, n in rows}

    def totals(self) -> dict[str, int]:
        from sqlalchemy import func, select

        from stickerq.models import Attempt, Campaign, Message

        with self.engine.connect() as conn:
            return {
                table.__tablename__: int(conn.scalar(select(func.count()).select_from(table)) or 0)
                for table in (Campaign, Message, Attempt)
            }

    def maintenance(self) -> dict[str, int]:
        """How often autovacuum has analyzed / vacuumed `messages` (PostgreSQL; else {})."""
        if self.backend != "postgresql":
            return {}
        with self.engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT autoanalyze_count, autovacuum_count FROM pg_stat_user_tables "
                "WHERE relname = 'messages'"
            ).one_or_none()
        return {"autoanalyze": int(row[0]), "autovacuum": int(row[1])} if row else {}

    def analyze(self) -> float:
        """VACUUM ANALYZE (PostgreSQL) or ANALYZE (SQLite); returns the seconds it took."""
        started = time.monotonic()
        if self.backend == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE)")  # every table of its own database
        else:
            with self.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        return time.monotonic() - started

    def fill_older(self, total: int) -> int:
        """`total` messages in older completed campaigns, one attempt each; returns campaigns.

        Only the columns that matter are given; the rest take the schema's defaults (and the
        models' Python-side scalar defaults, which SQLAlchemy adds to INSERT ... SELECT).
        """
        if total <= 0:
            return 0
        from sqlalchemy import insert

        from stickerq.models import Attempt, Campaign, Message

        n_campaigns = max(4, math.ceil(total / OLDER_PER_CAMPAIGN))
        now = datetime.now(UTC)
        for k in range(n_campaigns):
            count = total // n_campaigns + (1 if k < total % n_campaigns else 0)
            created = now - timedelta(days=n_campaigns - k)
            with self.engine.begin() as conn:
                campaign_id = conn.execute(
                    insert(Campaign).values(
                        name=f"older campaign {k + 1}",
                        sid=SID,
                        sender=SENDER,
                        sticker_id=STICKER_ID,
                        status="completed",
                        created_at=created,
                        started_at=created,
                        finished_at=created + timedelta(minutes=30),
                        recipient_count=count,
                    )
                ).inserted_primary_key[0]
                columns, rows = self._older_messages(campaign_id, count, created)
                conn.execute(insert(Message).from_select(columns, rows))
                columns, rows = self._older_attempts(campaign_id)
                conn.execute(insert(Attempt).from_select(columns, rows))
        return n_campaigns

    def _older_messages(self, campaign_id: int, count: int, created: datetime) -> Any:
        """(columns, SELECT) of `count` settled messages: numbers +9198..., a mix of states."""
        from sqlalchemy import Integer, String, case, cast, func, literal, select

        from stickerq.models import UTCDateTime

        if self.backend == "postgresql":
            series: Any = select(func.generate_series(0, count - 1).label("n")).subquery("g")
        else:
            series = select(literal(0, Integer).label("n")).cte("g", recursive=True)
            series = series.union_all(
                select((series.c.n + 1).label("n")).where(series.c.n < count - 1)
            )
        n = series.c.n
        # Mostly delivered or read, some only sent, a few failed or parked (WA400, E110).
        status = case(
            (n % 200 == 0, "parked"),
            (n % 50 == 1, "failed"),
            (n % 10 < 4, "read"),
            (n % 10 < 8, "delivered"),
            else_="sent",
        )

        def when(states: Sequence[str], value: Any, otherwise: Any = None) -> Any:
            return case((status.in_(states), value), else_=otherwise)

        def at(delay: timedelta) -> Any:
            return literal(created + delay, UTCDateTime)

        accepted = ("sent", "delivered", "read")
        values = {
            "campaign_id": literal(campaign_id, Integer),
            "recipient": literal("+9198", String) + cast(n + 10_000_000, String),
            "status": status,
            "attempts": literal(1, Integer),
            "delayed_retries": literal(0, Integer),
            "message_id": when(
                accepted, literal(f"older-{campaign_id}-", String) + cast(n, String)
            ),
            "last_error_code": when(("parked",), "E110", when(("failed",), "WA400")),
            "last_http_status": when(accepted, 202, 400),
            "created_at": at(timedelta()),
            "claimed_at": at(timedelta(minutes=5)),
            "last_attempt_at": at(timedelta(minutes=5)),
            "sent_at": when(accepted, at(timedelta(minutes=5))),
            "delivered_at": when(("delivered", "read"), at(timedelta(minutes=6))),
            "read_at": when(("read",), at(timedelta(minutes=25))),
        }
        return list(values), select(*values.values()).select_from(series)

    def _older_attempts(self, campaign_id: int) -> Any:
        """(columns, SELECT) of one attempt per message of the campaign, as its state says."""
        from sqlalchemy import Integer, case, literal, select

        from stickerq.models import Message

        status = Message.status
        values = {
            "message_pk": Message.id,
            "number": literal(1, Integer),
            "started_at": Message.last_attempt_at,
            "latency_ms": literal(100.0),
            "http_status": Message.last_http_status,
            "code": case(
                (Message.last_error_code.is_not(None), Message.last_error_code), else_="WA202"
            ),
            "action": case(
                (status == "parked", "park"), (status == "failed", "fail"), else_="sent"
            ),
        }
        rows = select(*values.values()).where(Message.campaign_id == campaign_id)
        return list(values), rows

    def close(self) -> None:
        self.engine.dispose()


# --------------------------------------------------------------------------- processes


def write_csv(path: Path, count: int, offset: int) -> None:
    """A recipients file: `count` distinct valid numbers from `offset` (throughput's helper)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone\n")
        for start in range(0, count, 100_000):
            chunk = recipients(min(100_000, count - start), offset + start)
            out.write("\n".join(chunk) + "\n")


def reset_peak_rss(pids: Sequence[int]) -> bool:
    """Reset VmHWM of these processes and their children (`5` > /proc/<pid>/clear_refs)."""
    done = True
    for pid in pids:
        for process in [pid, *(child.pid for child in common._children(pid))]:
            try:
                Path(f"/proc/{process}/clear_refs").write_text("5")
            except OSError:
                done = False
    return done


def sandbox_accepted(sandbox: common.Sandbox) -> dict[str, int]:
    """Requests, acceptances and duplicates, from the sandbox's counters (never its logs:
    a million entries are hundreds of MB of JSON)."""
    stats = sandbox.stats()
    per_recipient = stats["accepted"]
    return {
        "requests": int(stats["requests"]),
        "accepted": int(stats["accepted_total"]),
        "distinct": len(per_recipient),
        "duplicates": sum(n - 1 for n in per_recipient.values() if n > 1),
    }


def run_sizes(
    sandbox: common.Sandbox,
    db: ScaleDb,
    db_url: str,
    prefix: str,
    sizes: Sequence[int],
    run: int,
    workdir: Path,
    args: Any,
    result: dict[str, Any],
) -> None:
    """One run: workers started and warmed once, then every size in turn on them.

    Figures go into `result` as each size ends, so a crash keeps the sizes already done.
    """
    from stickerq.producer.api import enqueue_campaign
    from stickerq.producer.request import CampaignRequest
    from stickerq.queue import app, configure_celery

    settings = common.make_settings(
        db_url, prefix, sandbox.url, **common.worker_settings(args), rate_per_second=args.rate
    )
    configure_celery(settings)
    log(f"run {run}: {'VACUUM ANALYZE' if db.backend == 'postgresql' else 'ANALYZE'}")
    result["analyze_seconds"] = db.analyze()
    sandbox.reset()
    workers = common.spawn_stickerq_workers(
        settings, args.procs, args.concurrency, args.pool, tag=f"scale-{run}"
    )
    pids = [w.pid for w in workers]

    def enqueue(csv: Path, name: str) -> int:
        return enqueue_campaign(
            settings, CampaignRequest(sticker_id=STICKER_ID, to_file=csv, name=name)
        ).campaign_id

    def settle(campaign_id: int, timeout: float) -> float:
        return common.wait_until(
            lambda: db.finished_at(campaign_id),
            timeout,
            interval=0.1,
            alive=workers,
            what=f"campaign {campaign_id} completed",
        )

    try:
        common.wait_for_celery(app, args.procs, alive=workers)
        warm_count = args.batch_size * args.procs * args.concurrency * 2
        warm_csv = workdir / f"warm-{run}.csv"
        write_csv(warm_csv, warm_count, WARM_OFFSET)
        log(f"run {run}: warming the workers ({warm_count:,} recipients)")
        settle(enqueue(warm_csv, f"scale warm-up {run}"), 120)
        offset = 0
        for size in sizes:
            csv = workdir / f"run{run}-{size}.csv"
            write_csv(csv, size, offset)
            offset += size
            time.sleep(0.5)  # the last batches of the previous size return
            sandbox.reset()
            peak_reset = reset_peak_rss([*pids, sandbox.process.pid])
            maintenance = db.maintenance()
            common.wait_for_quiet()
            log(f"run {run}: {size:,} recipients")
            meter = common.CpuMeter({"worker": pids, "sandbox": [sandbox.process.pid]})
            started = time.time()
            campaign_id = enqueue(csv, f"scale {run} {size}")
            returned = time.time()
            finished = settle(campaign_id, max(300.0, size / 200))
            cpu = meter.stop()
            rss = common.tree_rss(pids)
            figures: dict[str, Any] = {
                "campaign_id": campaign_id,
                "seconds": finished - started,
                "rate": size / (finished - started),
                "enqueue_seconds": returned - started,
                "cpu": cpu,
                "rss_max": rss.max_bytes,
                "rss_sum": rss.sum_bytes,
                "peak_since_start": not peak_reset,
                "sandbox_rss": common.vm_hwm(sandbox.process.pid),
                "counts": db.counts(campaign_id),
                "sandbox": sandbox_accepted(sandbox),
                "maintenance": {
                    key: value - maintenance.get(key, 0) for key, value in db.maintenance().items()
                },
            }
            result["sizes"][size] = figures
            csv.unlink()
            log(
                f"run {run}: {size:,} at {figures['rate']:,.0f} msgs/s "
                f"({figures['seconds']:.1f} s, enqueue {figures['enqueue_seconds']:.1f} s)"
            )
        warm_csv.unlink()
    finally:
        common.stop_processes(workers)


# --------------------------------------------------------------------------- figures


def per_msg(figures: dict[str, Any], role: str, size: int) -> float:
    return float(figures["cpu"][role]) * 1000 / size


def size_row(size: int, f: dict[str, Any], base_rate: float | None, backend: str) -> list[str]:
    return [
        f"{size:,}",
        fmt(f["rate"]),
        fmt(f["rate"] / base_rate if base_rate else None, ".2f"),
        fmt(f["enqueue_seconds"], ".1f"),
        fmt(per_msg(f, "worker", size), ".3f"),
        fmt(per_msg(f, "postgres", size), ".3f") if backend == "postgresql" else "-",
        fmt(per_msg(f, "sandbox", size), ".3f"),
        f"{mb(f['rss_max']):.0f} (Σ {mb(f['rss_sum']):.0f})",
    ]


COLUMNS = [
    "size",
    "msgs/s",
    "/ smallest",
    "enqueue s",
    "worker ms/msg",
    "postgres ms/msg",
    "sandbox ms/msg",
    "worker peak RSS MB",
]


def print_run(run: int, result: dict[str, Any], sizes: Sequence[int], backend: str) -> None:
    got = result["sizes"]
    base = got[min(sizes)]["rate"]
    rows = [size_row(size, got[size], base, backend) for size in sizes]
    print_table(f"run {run} ({backend})", COLUMNS, rows)
    for size in sizes:
        f = got[size]
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(f["counts"].items()))
        s = f["sandbox"]
        problems = []
        if sum(f["counts"].values()) != size or set(f["counts"]) - {"sent"}:
            problems.append("not every message sent")
        if s["duplicates"] or s["distinct"] != size:
            problems.append("sandbox did not accept every recipient exactly once")
        auto = ", ".join(f"{k} {v}" for k, v in f["maintenance"].items() if v)
        print(
            f"  {size:,}: {fmt(f['seconds'], '.1f')} s; messages: {counts}; sandbox: "
            f"{s['requests']:,} requests, {s['accepted']:,} accepted, {s['distinct']:,} "
            f"recipients, duplicates {s['duplicates']}; sandbox peak RSS "
            f"{mb(f['sandbox_rss']):.0f} MB"
            + (f"; autovacuum on messages meanwhile: {auto}" if auto else "")
            + (
                " (RSS: peak since start, VmHWM could not be reset)"
                if f["peak_since_start"]
                else ""
            )
            + (f"  WARNING: {'; '.join(problems)}" if problems else "")
        )
        print(f"    {common.cpu_line(f['cpu'], size)}")
    what = "VACUUM ANALYZE" if backend == "postgresql" else "ANALYZE"
    print(f"  {what} before the run: {fmt(result.get('analyze_seconds'), '.1f')} s")
    sys.stdout.flush()


def summarise(runs: list[dict[str, Any]], sizes: Sequence[int], backend: str) -> list[Target]:
    small, large = min(sizes), max(sizes)

    def med(size: int, pick: Any) -> float:
        return median([pick(run["sizes"][size]) for run in runs])

    rows = []
    for size in sizes:
        ratio = median([run["sizes"][size]["rate"] / run["sizes"][small]["rate"] for run in runs])
        merged = {
            "rate": med(size, lambda f: f["rate"]),
            "enqueue_seconds": med(size, lambda f: f["enqueue_seconds"]),
            "cpu": {
                role: med(size, lambda f, role=role: f["cpu"][role])
                for role in ("worker", "postgres", "sandbox")
            },
            "rss_max": med(size, lambda f: f["rss_max"]),
            "rss_sum": med(size, lambda f: f["rss_sum"]),
        }
        row = size_row(size, merged, None, backend)
        row[2] = fmt(ratio, ".2f")
        rows.append(row)
    print_table(
        f"medians of {len(runs)} run(s) ({backend}; ratio: median of the per-run ratios)",
        COLUMNS,
        rows,
    )
    if small == large:
        return []
    ratio = median([run["sizes"][large]["rate"] / run["sizes"][small]["rate"] for run in runs])
    issue = (small, large) == (ISSUE_SMALL, ISSUE_LARGE)
    name = f"{large:,} recipients at ≥ {ISSUE_RATIO} x the msgs/s of {small:,} (same run)"
    if not issue:
        name += f" [not the issue's sizes: {ISSUE_LARGE:,} vs {ISSUE_SMALL:,}]"
    figure = (
        f"{ratio:.2f} x ({med(large, lambda f: f['rate']):,.0f} / "
        f"{med(small, lambda f: f['rate']):,.0f} msgs/s)"
    )
    return [Target(name, ratio >= ISSUE_RATIO, figure)]


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=None,
        help=f"campaign sizes, comma-separated (default {DEFAULT_SIZES['postgresql']}; "
        f"{DEFAULT_SIZES['sqlite']} on SQLite)",
    )
    parser.add_argument("--backend", default="postgresql", choices=["postgresql", "sqlite"])
    parser.add_argument(
        "--older-campaigns",
        type=int,
        default=None,
        metavar="MESSAGES",
        help="messages in older completed campaigns stored before the timed runs (default "
        f"{DEFAULT_OLDER['postgresql']:,}; {DEFAULT_OLDER['sqlite']:,} on SQLite; 0: none)",
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    common.add_worker_arguments(parser, procs=1, concurrency=2)
    parser.add_argument("--rate", type=float, default=100_000.0, help="limit per sender (/s)")
    parser.add_argument(
        "--no-wait-quiet",
        action="store_true",
        help="do not wait for a nearly idle machine before each timed part",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args()
    try:
        args.sizes = [int(s.replace("_", "")) for s in (args.sizes or "").split(",") if s] or [
            int(s) for s in DEFAULT_SIZES[args.backend].split(",")
        ]
    except ValueError:
        parser.error("--sizes takes whole numbers separated by commas")
    if len(set(args.sizes)) != len(args.sizes) or min(args.sizes) < 1:
        parser.error("--sizes must be distinct and positive")
    if sum(args.sizes) >= WARM_OFFSET:
        parser.error(f"--sizes add up to {WARM_OFFSET:,} or more")
    if args.older_campaigns is None:
        args.older_campaigns = DEFAULT_OLDER[args.backend]
    return args


def check_memory(sizes: Sequence[int]) -> None:
    """The sandbox holds every request of a size in memory: say so, and warn if short."""
    need = max(sizes) * SANDBOX_BYTES_PER_REQUEST
    available = common.psutil.virtual_memory().available
    note = (
        f"  sandbox request log: about {mb(need):,.0f} MB for {max(sizes):,} requests "
        f"(reset between sizes); {mb(available):,.0f} MB available"
    )
    if need * 2 > available:
        note += "  WARNING: that may not fit with the rest of the run"
    print(note, flush=True)


def main() -> int:
    args = parse_args()
    common.QUIET["enabled"] = not args.no_wait_quiet
    sizes: list[int] = args.sizes
    print(common.machine_line())
    print(
        f"scale: sizes {', '.join(f'{s:,}' for s in sizes)}, {args.backend}, "
        f"{args.older_campaigns:,} older messages, sandbox latency {args.latency_ms:g} ms, "
        f"{args.runs} run(s); stickerq: {args.procs} worker(s) x {args.pool} "
        f"{args.concurrency}, in_flight {args.in_flight}, batch {args.batch_size}, "
        f"batches per process {args.batches_per_process}, limit {args.rate:,.0f}/s"
    )
    check_memory(sizes)
    runs: list[dict[str, Any]] = []
    with (
        scale_database(args.backend) as db_url,
        common.redis_prefix("scale") as prefix,
        tempfile.TemporaryDirectory(prefix=f"stickerq-bench-scale-csv-{common.RUN_ID}-") as tmp,
    ):
        db = ScaleDb(db_url)
        try:
            log(f"storing {args.older_campaigns:,} older messages")
            started = time.monotonic()
            older = db.fill_older(args.older_campaigns)
            totals = db.totals()
            print(
                f"  older: {older} completed campaigns, {totals['messages']:,} messages, "
                f"{totals['attempts']:,} attempts, stored in {time.monotonic() - started:.1f} s",
                flush=True,
            )
            sandbox = common.Sandbox(args.latency_ms)
            print(f"  {sandbox.priority_note}", flush=True)
            try:
                for run in range(1, args.runs + 1):
                    result: dict[str, Any] = {"sizes": {}}
                    try:
                        run_sizes(sandbox, db, db_url, prefix, sizes, run, Path(tmp), args, result)
                    except BaseException:
                        done = [size for size in sizes if size in result["sizes"]]
                        if done:  # what this run measured before it failed, then the error
                            print_run(run, result, done, args.backend)
                            common.dump_json(args.json, [*runs, result])
                        raise
                    runs.append(result)
                    print_run(run, result, sizes, args.backend)
            finally:
                sandbox.stop()
        finally:
            db.close()
    targets = summarise(runs, sizes, args.backend)
    if targets:
        common.print_targets(targets)
    common.dump_json(args.json, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
