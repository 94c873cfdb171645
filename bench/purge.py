"""Purge: a campaign sent while beat's purge deletes millions of old messages.

    .venv/bin/python bench/purge.py [--old-messages 5000000] [--recipients 20000] [--runs 1]

For issue 23, "Sending does not notice": with --old-messages past retention in the database,
a campaign of --recipients sent while the purge runs keeps >= 0.9 x its rate without the
purge (same run), the purge removes >= 50,000 messages a second, and no statement of the
send path waits on a lock for more than 100 ms.

One sandbox process (100 ms latency), the real Redis, and a PostgreSQL database of this
run's own with `log_lock_waits = on` and `deadlock_timeout = 100ms` set on it, so that the
server logs every lock wait past 100 ms with its statement. Per run:

1. old data, server-side (INSERT ... SELECT generate_series): completed campaigns of
   --old-campaign-size messages finished 40 days ago, messages in a mix of final states with
   message_id and times, 1.1 API calls a message, 0.13 attempts rows (a WA202 send has none
   since migration 0021); then VACUUM (ANALYZE). A later run tops it
   up to --old-messages again;
2. `stickerq worker` processes, started and warmed once; then two sends of --recipients
   (new numbers each), baseline first in odd runs and second in even ones:
   - baseline: nothing else runs;
   - purged: the purge runs in a process of its own (`worker.purge.purge` with beat's
     defaults, run after run without a pause: beat's purge, continuously), started before
     the send and kept running --alone-seconds after it, nothing sending;
3. figures: each send's msgs/s (recipients / (campaign's `finished_at` - just before
   `enqueue_campaign`)), the purge's messages deleted per second while the campaign sent and
   alone after it (from the time and row count of each of its DELETEs on `messages`), and
   every lock wait the server logged for this database during the sends.

Prints a table per run, then the medians and MET/MISSED per target; exits non-zero only on
a crash. A run at the full sizes costs about 3 minutes, half of it seeding.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import PY, SENDER, SID, STICKER_ID, Target, fmt, log, median, print_table
from throughput import CampaignDb, recipients

OLD_TAG = "bench old"  # name prefix of the seeded campaigns
WARM_OFFSET = 80_000_000  # the warm-up campaign's numbers: apart from every send's
RATIO_TARGET, PURGE_TARGET, WAIT_TARGET_MS = 0.9, 50_000, 100.0


# --------------------------------------------------------------------------- old data

_CAMPAIGNS = f"""
INSERT INTO campaigns (name, sid, sender, sticker_id, wa_source, status, created_at,
    started_at, finished_at, recipient_count, wa400_streak, suppressed_count, senders_per_row)
SELECT '{OLD_TAG} ' || k, %(sid)s, %(sender)s, %(sticker)s, 'api', 'completed',
    now() - interval '40 days 1 hour', now() - interval '40 days 1 hour',
    now() - interval '40 days' + k * interval '1 minute', %(per)s::int, 0, 0, false
FROM generate_series(%(first)s::int, %(last)s::int) AS k
RETURNING id
"""
# Mostly delivered or read, some only sent, a few failed (WA400) or parked (E110); one
# message in ten needed a second try (a WA500 first), so 1.1 API calls a message. Written as
# the code writes them since 0021: a WA202 send is on its message's row, with no `attempts`
# row, so 0.13 attempts rows a message.
_MESSAGES = """
INSERT INTO messages (campaign_id, recipient, status, attempts, delayed_retries, message_id,
    last_error_code, last_http_status, created_at, claimed_at, last_attempt_at, sent_at,
    delivered_at, read_at, sent_latency_ms)
SELECT c.id, '+9198' || (10000000 + n), s.status, CASE WHEN n %% 10 = 3 THEN 2 ELSE 1 END, 0,
    CASE WHEN s.accepted THEN md5(c.id || ':' || n) END,
    CASE s.status WHEN 'parked' THEN 'E110' WHEN 'failed' THEN 'WA400' END,
    CASE WHEN s.accepted THEN 202 ELSE 400 END,
    c.created_at, c.started_at, c.started_at + interval '5 minutes',
    CASE WHEN s.accepted THEN c.started_at + interval '5 minutes' END,
    CASE WHEN s.status IN ('delivered', 'read') THEN c.started_at + interval '6 minutes' END,
    CASE WHEN s.status = 'read' THEN c.started_at + interval '25 minutes' END,
    CASE WHEN s.accepted THEN 100.0 END
FROM campaigns c
CROSS JOIN generate_series(0, c.recipient_count - 1) AS n
CROSS JOIN LATERAL (
    SELECT st AS status, st IN ('sent', 'delivered', 'read') AS accepted
    FROM (SELECT CASE WHEN n %% 200 = 0 THEN 'parked' WHEN n %% 50 = 1 THEN 'failed'
        WHEN n %% 10 < 4 THEN 'read' WHEN n %% 10 < 8 THEN 'delivered' ELSE 'sent' END) AS t(st)
) AS s
WHERE c.id = ANY(%(ids)s)
"""
_ATTEMPTS = """
INSERT INTO attempts (message_pk, number, started_at, latency_ms, http_status, code, action)
SELECT m.id, a.number, m.last_attempt_at - (m.attempts - a.number) * interval '1 second',
    100.0,
    CASE WHEN a.number < m.attempts THEN 500 ELSE m.last_http_status END,
    CASE WHEN a.number < m.attempts THEN 'WA500' ELSE coalesce(m.last_error_code, 'WA202') END,
    CASE WHEN a.number < m.attempts THEN 'retry' WHEN m.status = 'parked' THEN 'park'
        WHEN m.status = 'failed' THEN 'fail' ELSE 'sent' END
FROM messages m CROSS JOIN LATERAL generate_series(1, m.attempts) AS a(number)
WHERE m.campaign_id = ANY(%(ids)s) AND NOT (a.number = m.attempts AND m.sent_at IS NOT NULL)
"""


class OldData:
    """The seeded campaigns past retention, on a connection of the benchmark's own."""

    def __init__(self, url: str, per_campaign: int) -> None:
        import psycopg

        self.db = psycopg.connect(url, autocommit=True)
        self.per_campaign = per_campaign
        self.made = 0  # campaigns seeded so far (their names go on from here)

    def left(self) -> int:
        """Old messages not purged yet: unmarked campaigns count whole, marked ones by rows."""
        unmarked, marked = self.db.execute(
            "SELECT coalesce(sum(recipient_count) FILTER (WHERE messages_purged_at IS NULL), 0),"
            " array_agg(id) FILTER (WHERE messages_purged_at IS NOT NULL)"
            " FROM campaigns WHERE name LIKE %s",
            (OLD_TAG + " %",),
        ).fetchone()
        counted = 0
        if marked:
            row = self.db.execute(
                "SELECT count(*) FROM messages WHERE campaign_id = ANY(%s)", (marked,)
            ).fetchone()
            counted = int(row[0])
        return int(unmarked) + counted

    def top_up(self, total: int) -> dict[str, float]:
        """Seed campaigns until `total` old messages are waiting, then VACUUM (ANALYZE)."""
        started, missing = time.monotonic(), total - self.left()
        seeded = 0
        while missing > 0:
            count = min(10, -(-missing // self.per_campaign))  # ten campaigns a transaction
            per = min(self.per_campaign, missing)
            with self.db.transaction():
                rows = self.db.execute(
                    _CAMPAIGNS,
                    {
                        "sid": SID,
                        "sender": SENDER,
                        "sticker": STICKER_ID,
                        "per": per,
                        "first": self.made + 1,
                        "last": self.made + count,
                    },
                ).fetchall()
                ids = [row[0] for row in rows]
                self.db.execute(_MESSAGES, {"ids": ids})
                self.db.execute(_ATTEMPTS, {"ids": ids})
            self.made += count
            seeded += count * per
            missing -= count * per
            log(f"seeded {seeded:,} old messages")
        seed_seconds = time.monotonic() - started
        self.db.execute("VACUUM (ANALYZE)")
        return {
            "seeded": seeded,
            "seed_seconds": seed_seconds,
            "vacuum_seconds": time.monotonic() - started - seed_seconds,
        }

    def sizes(self) -> str:
        row = self.db.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('messages')),"
            " pg_size_pretty(pg_total_relation_size('attempts')),"
            " (SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'messages'),"
            " (SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'attempts')"
        ).fetchone()
        return f"messages {row[2]:,} rows, {row[0]}; attempts {row[3]:,} rows, {row[1]}"

    def close(self) -> None:
        self.db.close()


# --------------------------------------------------------------------------- the purge


def purge_child(url: str, events: Path, retention_days: float, pause: float | None) -> None:
    """Runs in a process of its own: beat's purge (its defaults; `pause`: another
    sending_pause) run after run, until killed. Writes one line per DELETE on messages
    (time, rows) to `events`, and the backend pid of each connection it opens (its lock
    waits are not the send path's)."""
    from sqlalchemy import event

    from stickerq.db import make_engine, make_session_factory
    from stickerq.models import utcnow
    from stickerq.worker.purge import Retention, purge

    out = events.open("a", buffering=1, encoding="utf-8")
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _pid(dbapi_connection: Any, _: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            out.write(json.dumps({"pid": cursor.fetchone()[0]}) + "\n")

    @event.listens_for(engine, "after_cursor_execute")
    def _deleted(_c: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("DELETE FROM messages"):
            out.write(json.dumps({"t": time.time(), "m": cursor.rowcount}) + "\n")

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # mid-batch: it rolls back
    sessions = make_session_factory(engine)
    kept = Retention(retention_days)
    options = {} if pause is None else {"sending_pause": pause}
    while True:
        if not purge(sessions, kept.past(utcnow()), **options).messages:
            out.write(json.dumps({"t": time.time(), "idle": True}) + "\n")
            time.sleep(0.5)  # nothing past retention: wait as beat would, only shorter


@dataclass
class PurgeProcess:
    process: Any
    events: Path

    @classmethod
    def start(cls, url: str, run: int, args: Any) -> PurgeProcess:
        events = Path(tempfile.gettempdir()) / f"stickerq-bench-{common.RUN_ID}-purge{run}"
        events.unlink(missing_ok=True)
        argv = [PY, __file__, "--child-purge", url, str(events), str(args.retention_days)]
        argv += [] if args.sending_pause is None else ["--sending-pause", str(args.sending_pause)]
        return cls(common.spawn(argv, common.child_env(), f"purge-{run}"), events)

    def read(self) -> tuple[list[tuple[float, int | None]], set[int]]:
        """(time, messages) of each delete so far (None: a run that found nothing to purge),
        and the purge's backend pids."""
        deletes: list[tuple[float, int | None]] = []
        pids: set[int] = set()
        if self.events.exists():
            for line in self.events.read_text(encoding="utf-8").splitlines():
                item = json.loads(line)
                if "pid" in item:
                    pids.add(int(item["pid"]))
                else:
                    deletes.append((float(item["t"]), item.get("m")))
        return deletes, pids

    def wait_started(self, timeout: float = 120.0) -> None:
        """Until its first batch is deleted (marking a campaign reads its totals first)."""
        common.wait_until(
            lambda: self.read()[0], timeout, 0.05, alive=[self.process], what="the purge"
        )

    def stop(self) -> None:
        common.stop_processes([self.process])
        self.events.unlink(missing_ok=True)


def purge_rate(deletes: list[tuple[float, int | None]], start: float, end: float) -> dict[str, Any]:
    """Messages deleted per second between `start` and `end`; when the old data ran out on
    the way (a run found nothing to purge), over the span until then."""
    inside = [(t, n) for t, n in deletes if start < t <= end]
    idle = [t for t, n in inside if n is None]
    span = (idle[0] if idle else end) - start
    deleted = sum(n or 0 for t, n in inside if not idle or t <= idle[0])
    rate = deleted / span if deleted and span > 0 else None
    return {"deleted": deleted, "seconds": span, "rate": rate, "ran_out": bool(idle)}


# --------------------------------------------------------------------------- lock waits

_ENTRY = re.compile(r"\[(\d+)\] \S*@(\S*) (LOG|DETAIL|CONTEXT|STATEMENT|ERROR|WARNING):  (.*)")
_WAITING = re.compile(r"still waiting for (.+?) after ([\d.]+) ms")
_ACQUIRED = re.compile(r"acquired (.+?) after ([\d.]+) ms")


@dataclass
class LockWait:
    pid: int
    lock: str
    ms: float
    statement: str = ""
    context: str = ""


class ServerLog:
    """The server's log file, read from an offset: the lock waits logged for one database.

    Needs `%p` and `%d` in log_line_prefix (Debian's default `%m [%p] %q%u@%d `)."""

    def __init__(self, admin: Any, database: str) -> None:
        self.database = database
        self.path = self._find(admin)
        self.offset = 0

    @staticmethod
    def _find(admin: Any) -> Path | None:
        def show(name: str) -> str:
            return str(admin.execute(f"SHOW {name}").fetchone()[0])

        prefix = show("log_line_prefix")
        if "%p" not in prefix or "%d" not in prefix:
            return None
        candidates = []
        current = admin.execute("SELECT pg_current_logfile()").fetchone()[0]
        if current:  # the logging collector's file, relative to the data directory
            candidates.append(Path(show("data_directory")) / current)
        cluster = show("cluster_name")  # Debian's pg_ctlcluster: stderr to its own file
        if "/" in cluster:
            version, name = cluster.split("/", 1)
            candidates.append(Path(f"/var/log/postgresql/postgresql-{version}-{name}.log"))
        for path in candidates:
            if os.access(path, os.R_OK):
                return path
        return None

    def mark(self) -> None:
        if self.path is not None:
            self.offset = self.path.stat().st_size

    def waits(self) -> list[LockWait]:
        """Every wait logged since `mark`, longest duration known (`acquired ... after`)."""
        assert self.path is not None
        with self.path.open("rb") as file:
            file.seek(self.offset)
            text = file.read().decode("utf-8", "replace")
        found: list[LockWait] = []
        open_wait: dict[int, LockWait] = {}
        last: tuple[int, str] | None = None
        for line in text.splitlines():
            match = _ENTRY.search(line)
            if match is None:
                if line.startswith(("\t", " ")) and last and last[0] in open_wait:
                    wait = open_wait[last[0]]
                    if last[1] == "STATEMENT":
                        wait.statement += " " + line.strip()
                continue
            pid, database, kind, message = int(match[1]), match[2], match[3], match[4]
            if database != self.database:
                continue
            last = (pid, kind)
            if kind == "LOG" and (waiting := _WAITING.search(message)):
                open_wait[pid] = LockWait(pid, waiting[1], float(waiting[2]))
                found.append(open_wait[pid])
            elif kind == "LOG" and (acquired := _ACQUIRED.search(message)) and pid in open_wait:
                open_wait.pop(pid).ms = float(acquired[2])
            elif pid in open_wait and kind == "STATEMENT":
                open_wait[pid].statement = message
            elif pid in open_wait and kind == "CONTEXT":
                open_wait[pid].context = message
        return found


class LockSampler:
    """When the log cannot be read: pg_locks every ~20 ms, the longest wait seen per statement
    (`now() - waitstart` of an ungranted lock in this database)."""

    QUERY = """
        SELECT l.pid, a.query, extract(epoch FROM now() - l.waitstart) * 1000
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE NOT l.granted AND a.datname = %s AND l.waitstart IS NOT NULL
    """

    def __init__(self, admin_url: str, database: str) -> None:
        import psycopg

        self.db = psycopg.connect(admin_url, autocommit=True)
        self.database = database
        self.longest: dict[tuple[int, str], float] = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop_event.wait(0.02):
            for pid, query, ms in self.db.execute(self.QUERY, (self.database,)).fetchall():
                key = (int(pid), str(query))
                self.longest[key] = max(self.longest.get(key, 0.0), float(ms))

    def waits(self) -> list[LockWait]:
        self.stop_event.set()
        self.thread.join()
        self.db.close()
        return [
            LockWait(pid, "sampled", ms, statement)
            for (pid, statement), ms in self.longest.items()
            if ms > WAIT_TARGET_MS
        ]


# --------------------------------------------------------------------------- one run


@dataclass
class Send:
    """One campaign of the run, with or without the purge alongside."""

    rate: float
    seconds: float
    counts: dict[str, int]
    cpu: dict[str, float]
    waits: list[LockWait] = field(default_factory=list)
    purge: dict[str, Any] | None = None
    purge_alone: dict[str, Any] | None = None


def run_once(
    run: int,
    sandbox: common.Sandbox,
    db_url: str,
    prefix: str,
    old: OldData,
    server_log: ServerLog,
    args: Any,
) -> dict[str, Any]:
    from stickerq.producer.api import enqueue_campaign
    from stickerq.producer.request import CampaignRequest
    from stickerq.queue import app, configure_celery

    figures: dict[str, Any] = {"seed": old.top_up(args.old_messages)}
    figures["old_left"], figures["sizes"] = old.left(), old.sizes()
    log(f"run {run}: {figures['sizes']}")
    settings = common.make_settings(
        db_url, prefix, sandbox.url, **common.worker_settings(args), rate_per_second=args.rate
    )
    configure_celery(settings)
    workers = common.spawn_stickerq_workers(
        settings, args.procs, args.concurrency, args.pool, tag=f"purge-bench-{run}"
    )
    campaigns = CampaignDb(db_url)

    def send(numbers: list[str], name: str) -> tuple[int, float, float]:
        request = CampaignRequest(sticker_id=STICKER_ID, to=",".join(numbers), name=name)
        started = time.time()
        campaign_id = enqueue_campaign(settings, request).campaign_id
        finished = common.wait_until(
            lambda: campaigns.finished_at(campaign_id),
            max(300.0, len(numbers) / 50),
            interval=0.05,
            alive=workers,
            what=f"campaign {campaign_id} completed",
        )
        return campaign_id, started, finished

    def timed(kind: str, offset: int) -> Send:
        sandbox.reset()
        common.wait_for_quiet()
        purger = PurgeProcess.start(db_url, run, args) if kind == "purged" else None
        waits: Any = None
        try:
            if purger is not None:
                purger.wait_started()
            log(f"run {run}: {kind} send of {args.recipients:,}")
            waits = LockWatch(server_log, args.sample_locks)
            roles = {"worker": [w.pid for w in workers], "sandbox": [sandbox.process.pid]}
            if purger is not None:
                roles["purge"] = [purger.process.pid]
            meter = common.CpuMeter(roles)
            campaign_id, started, finished = send(
                recipients(args.recipients, offset), f"{kind}-{run}"
            )
            cpu = meter.stop()
            result = Send(
                rate=args.recipients / (finished - started),
                seconds=finished - started,
                counts=campaigns.counts(campaign_id),
                cpu=cpu,
            )
            if purger is not None:
                result.purge = purge_rate(purger.read()[0], started, finished)
                log(f"run {run}: the purge alone for {args.alone_seconds:g} s")
                time.sleep(args.alone_seconds)
                alone_end = time.time()
                result.purge_alone = purge_rate(purger.read()[0], finished, alone_end)
            result.waits = waits.stop(purger.read()[1] if purger else set())
        finally:
            if purger is not None:
                purger.stop()
        return result

    try:
        common.wait_for_celery(app, args.procs, alive=workers)
        warm = args.batch_size * args.procs * args.concurrency * 2
        log(f"run {run}: warming the workers ({warm:,} recipients)")
        send(recipients(warm, WARM_OFFSET + run * warm), f"warm-{run}")
        order = ("baseline", "purged") if run % 2 else ("purged", "baseline")
        for kind in order:
            offset = (2 * (run - 1) + order.index(kind)) * args.recipients
            figures[kind] = timed(kind, offset)
    finally:
        campaigns.close()
        common.stop_processes(workers)
    figures["order"] = order
    return figures


class LockWatch:
    """The lock waits of one send: from the server's log when it can be read, else sampled."""

    def __init__(self, server_log: ServerLog, sample: bool) -> None:
        self.log = server_log
        self.sampler = None
        if server_log.path is None or sample:
            self.sampler = LockSampler(common.PG_ADMIN_URL, server_log.database)
        server_log.mark()

    def stop(self, purge_pids: set[int]) -> list[LockWait]:
        time.sleep(0.2)  # the server writes its log lines
        waits = self.sampler.waits() if self.sampler else self.log.waits()
        for wait in waits:
            wait.context = ("purge" if wait.pid in purge_pids else "send path") + (
                f"; {wait.context}" if wait.context else ""
            )
        return waits


# --------------------------------------------------------------------------- output


def send_path_waits(send: Send) -> list[LockWait]:
    return [w for w in send.waits if w.context.startswith("send path")]


def longest(waits: list[LockWait]) -> float:
    return max((w.ms for w in waits), default=0.0)


def print_run(run: int, f: dict[str, Any]) -> None:
    base, purged = f["baseline"], f["purged"]
    rows = []
    for kind in f["order"]:
        send = f[kind]
        purge = send.purge or {}
        rows.append(
            [
                kind,
                fmt(send.rate),
                fmt(send.seconds, ".1f"),
                fmt(purge.get("rate")),
                fmt(purge.get("deleted")),
                str(len(send_path_waits(send))),
                fmt(longest(send_path_waits(send)), ".0f"),
                str(len(send.waits) - len(send_path_waits(send))),
            ]
        )
    columns = [
        "send",
        "msgs/s",
        "seconds",
        "purge msgs/s",
        "purged",
        "send-path waits >100ms",
        "longest ms",
        "purge waits",
    ]
    print_table(f"run {run}", columns, rows)
    alone = purged.purge_alone or {}
    seed = f["seed"]
    print(
        f"  old data: {f['sizes']}; seeded {seed['seeded']:,} in {seed['seed_seconds']:.0f} s, "
        f"VACUUM (ANALYZE) {seed['vacuum_seconds']:.0f} s"
    )
    print(
        f"  purged / baseline {purged.rate / base.rate:.2f}; purge alone after the send "
        f"{fmt(alone.get('rate'))} msgs/s ({fmt(alone.get('deleted'))} in "
        f"{fmt(alone.get('seconds'), '.1f')} s)"
        + ("; the old data ran out during the send" if (purged.purge or {}).get("ran_out") else "")
    )
    for kind in f["order"]:
        send = f[kind]
        cpu = dict(send.cpu)
        print(f"  {kind}: {common.cpu_line(cpu, messages_of(send))}")
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(send.counts.items()))
        print(f"    messages: {counts}")
        for wait in send.waits:
            print(
                f"    waited {wait.ms:.0f} ms ({wait.context}) for {wait.lock}: "
                f"{' '.join(wait.statement.split())[:300]}"
            )


def messages_of(send: Send) -> int:
    return sum(send.counts.values()) or 1


def summarise(runs: list[dict[str, Any]]) -> None:
    base = median([f["baseline"].rate for f in runs])
    purged = median([f["purged"].rate for f in runs])
    ratio = median([f["purged"].rate / f["baseline"].rate for f in runs])
    during = median([(f["purged"].purge or {}).get("rate") for f in runs])
    ran_out = any((f["purged"].purge or {}).get("ran_out") for f in runs)
    # The purge emptied the old data before the send ended: its rates are not a measure.
    short = " (the old data ran out during the send: more --old-messages)" if ran_out else ""
    alone = median([(f["purged"].purge_alone or {}).get("rate") for f in runs])
    waits = [w for f in runs for kind in ("baseline", "purged") for w in send_path_waits(f[kind])]
    worst = longest(waits)
    rows = [
        ["baseline msgs/s", fmt(base)],
        ["msgs/s while the purge runs", fmt(purged)],
        ["purged / baseline (median of per-run ratios)", fmt(ratio, ".2f")],
        ["purge msgs/s while the campaign sends", fmt(during)],
        ["purge msgs/s alone, after the send", fmt(alone)],
        ["send-path lock waits > 100 ms (all runs)", str(len(waits))],
        ["longest send-path lock wait ms", fmt(worst, ".0f")],
    ]
    print_table(f"medians of {len(runs)} run(s)", ["figure", "value"], rows)
    common.print_targets(
        [
            Target(
                f"a campaign sent while the purge runs ≥ {RATIO_TARGET} x without",
                ratio >= RATIO_TARGET,
                f"{ratio:.2f} x ({purged:,.0f} / {base:,.0f} msgs/s)",
            ),
            Target(
                f"the purge removes ≥ {PURGE_TARGET:,} messages/s, alone",
                alone >= PURGE_TARGET and not ran_out,
                f"{fmt(alone)} msgs/s{short}",
            ),
            Target(
                f"the purge removes ≥ {PURGE_TARGET:,} messages/s, while the campaign sends",
                during >= PURGE_TARGET and not ran_out,
                f"{fmt(during)} msgs/s{short}",
            ),
            Target(
                f"no send-path statement waits on a lock > {WAIT_TARGET_MS:.0f} ms",
                not waits,
                f"{len(waits)} wait(s)" + (f", longest {worst:.0f} ms" if waits else ""),
            ),
        ]
    )


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="~3 min each at the full sizes")
    parser.add_argument("--old-messages", type=int, default=5_000_000)
    parser.add_argument("--old-campaign-size", type=int, default=100_000)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--rate", type=float, default=100_000.0, help="limit per sender (/s)")
    parser.add_argument("--retention-days", type=float, default=30.0)
    parser.add_argument(
        "--alone-seconds", type=float, default=15.0, help="the purge alone after the send"
    )
    parser.add_argument(
        "--sending-pause",
        type=float,
        default=None,
        help="the purge's pause after a batch while a campaign sends, in batch times "
        "(default: worker/purge.py's; 0: none)",
    )
    parser.add_argument(
        "--sample-locks",
        action="store_true",
        help="sample pg_locks every 20 ms even when the server's log can be read",
    )
    common.add_worker_arguments(parser, procs=1, concurrency=2)
    parser.add_argument("--no-wait-quiet", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--child-purge", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args()


def purge_shape(args: Any) -> str:
    """What the purge process runs with: worker/purge.py's defaults, or --sending-pause."""
    from stickerq.worker import purge

    shape = f"batches of {purge.BATCH:,}, {purge.MAX_BATCHES} a run"
    pause = (
        getattr(purge, "SENDING_PAUSE", None) if args.sending_pause is None else args.sending_pause
    )
    return shape + (f", pause {pause:g} x a batch while sending" if pause else ", no pause")


def lock_logging(db_url: str) -> ServerLog:
    """Every lock wait past 100 ms in this database is logged, with its statement (the
    settings apply to the connections opened after); returns where the server logs."""
    import psycopg

    name = db_url.rsplit("/", 1)[1]
    with psycopg.connect(common.PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" SET log_lock_waits = on')
        admin.execute(f"ALTER DATABASE \"{name}\" SET deadlock_timeout = '100ms'")
        return ServerLog(admin, name)


def main() -> int:
    args = parse_args()
    if args.child_purge:
        url, events, days = args.child_purge
        purge_child(url, Path(events), float(days), args.sending_pause)
        return 0
    common.QUIET["enabled"] = not args.no_wait_quiet
    print(common.machine_line())
    print(
        f"purge: {args.old_messages:,} old messages in campaigns of {args.old_campaign_size:,}, "
        f"a campaign of {args.recipients:,}, sandbox latency {args.latency_ms:g} ms, "
        f"{args.runs} run(s); {args.procs} worker(s) x {args.pool} {args.concurrency}, "
        f"in_flight {args.in_flight}, batch {args.batch_size}; the purge: {purge_shape(args)}"
    )
    runs: list[dict[str, Any]] = []
    with common.bench_database("purge") as db_url, common.redis_prefix("purge") as prefix:
        server_log = lock_logging(db_url)
        if server_log.path is not None and not args.sample_locks:
            source = f"from the server's log ({server_log.path})"
        else:
            source = "sampled from pg_locks every 20 ms (the server's log cannot be read)"
        old = OldData(db_url, args.old_campaign_size)
        sandbox = common.Sandbox(args.latency_ms)
        print(f"  {sandbox.priority_note}; lock waits past 100 ms {source}")
        try:
            for run in range(1, args.runs + 1):
                figures = run_once(run, sandbox, db_url, prefix, old, server_log, args)
                runs.append(figures)
                print_run(run, figures)
        finally:
            sandbox.stop()
            old.close()
    summarise(runs)
    common.dump_json(
        args.json,
        [{k: asdict(v) if isinstance(v, Send) else v for k, v in f.items()} for f in runs],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
