"""Bytes per message: what a sent campaign, called back, leaves in the database.

    .venv/bin/python bench/storage.py [--recipients 20000] [--backend both|postgresql|sqlite]
                                      [--vacuum-every 25] [--seed 7] [--json FILE]

For each backend, two new databases, filled the same way: one migrated to head, one to the
revision before the storage cuts (`0015`'s down_revision) and the later migrations but the
cuts (0015, 0021), written there as the code before the cuts wrote (claim tokens kept on
settled rows, every attempt a row of its own). In
each, a campaign of --recipients is enqueued (`producer.api.enqueue_campaign`: the COPY or
chunked bulk insert), then sent batch by batch as a worker does, through the worker's own
statements: the claim (`worker.claims.claim`), the leaving marks in groups of 5
(`worker.leaving.MarkWriter`), the results and attempts (`worker.results.write_results`)
built from the sandbox's own answers read by `worker.kaleyra.parse_reply` and
`worker.outcomes.classify`. The mix, seeded: 1 % WA400 (failed), 3 % one WA500 then WA202 (a
quick retry), 1 % three WA500s (a durable retry, sent by a later claim), the rest WA202.
Callbacks go through `producer.callbacks. apply_callbacks` in batches of 500, a batch behind
the sends: 2 % of the sent fail (Meta's 131047), the rest are delivered, 85 % of those read.

Autovacuum is off on every table: when its ANALYZE holds a snapshot decides which dead rows a
page can drop, and the figures varied by a quarter from run to run. The bench vacuums
`messages` and `attempts` itself every --vacuum-every batches (25: every 5,000 messages), as
autovacuum would during a campaign; `--vacuum-every 0` vacuums only at the end, as the first
measurement of issue 23 did, which leaves every dead version's space in the tables.

Then PostgreSQL gets VACUUM (ANALYZE) and its sizes from pg_relation_size (heap, with its
free space and visibility maps), pg_indexes_size and the TOAST table's
pg_total_relation_size; SQLite's come from the dbstat virtual table (pages of each table and
index, free space in them included), after a WAL checkpoint, and the freelist apart (an
SQLite without dbstat: the file's size after VACUUM only). Sizes are of the whole database;
the campaign's messages are the only ones in it, so every byte is divided by --recipients.
No timing is measured. SQLite's figures are the same for a seed; PostgreSQL's move by up to a
fifth between runs (how much of a page each prune could take back), the ratio by a hundredth.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import random
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import STICKER_ID, dump_json, fmt, print_table

BATCH = 200  # the worker's default batch
CALLBACK_BATCH = 500
LEAVING_GROUP = 5  # what a worker's leaving thread gathers in 5 ms at ~1,000 msgs/s
# The migrations that made the cuts; the baseline is the revision before the first.
STORAGE_REVISIONS = ("0015", "0021")
TABLES = ("messages", "attempts")
VACUUM_EVERY = 25  # batches (see the docstring)

# The outcome mix of one message: (share, answers of its first claim, answer of a later one).
MIX: list[tuple[float, tuple[str, ...], str | None]] = [
    (0.01, ("WA400",), None),
    (0.03, ("WA500", "WA202"), None),
    (0.01, ("WA500", "WA500", "WA500"), "WA202"),
    (0.95, ("WA202",), None),
]
CALLBACK_FAILED = 0.02
READ = 0.85


@dataclass
class Size:
    heap: int = 0
    indexes: int = 0
    toast: int = 0
    per_index: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.heap + self.indexes + self.toast


@dataclass
class Filled:
    messages: int = 0
    attempts: int = 0
    callbacks: int = 0


# --------------------------------------------------------------------------- databases


def before_revision() -> str:
    from alembic.script import ScriptDirectory

    from stickerq.migrate import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    down = scripts.get_revision(STORAGE_REVISIONS[0]).down_revision
    assert isinstance(down, str)
    return down


@contextlib.contextmanager
def postgres_database(revision: str) -> Iterator[str]:
    import psycopg

    name = f"stickerq_bench_storage_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(common.PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = common.PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        _upgrade(url, revision)
        with psycopg.connect(url, autocommit=True) as db:
            for (table,) in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ):
                db.execute(f'ALTER TABLE "{table}" SET (autovacuum_enabled = false)')
        yield url
    finally:
        with psycopg.connect(common.PG_ADMIN_URL, autocommit=True, connect_timeout=30) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def sqlite_database(revision: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="stickerq-bench-storage-") as folder:
        url = f"sqlite:///{folder}/storage.db"
        _upgrade(url, revision)
        yield url


def _upgrade(url: str, revision: str) -> None:
    """Migrate to `revision`, then apply the later migrations but the storage cuts: today's
    code writes the columns they add (0016's `campaigns.in_window`, say)."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from stickerq.migrate import alembic_config, upgrade

    upgrade(url, revision)
    scripts = ScriptDirectory.from_config(alembic_config(url))
    later = [
        script
        for script in reversed(list(scripts.iterate_revisions("heads", revision)))
        if script.revision not in (revision, *STORAGE_REVISIONS)
    ]
    if not later:
        return
    engine = create_engine(url)
    try:
        with (
            engine.begin() as connection,
            Operations.context(MigrationContext.configure(connection)),
        ):
            for script in later:
                script.module.upgrade()
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- the campaign


def kaleyra_reply(code: str, message_id: str) -> Any:
    """The sandbox's answer for `code`, read as the worker reads an answer."""
    from stickerq.sandbox.replies import REPLIES
    from stickerq.worker.kaleyra import parse_reply

    reply = REPLIES[code]
    return parse_reply(reply.status, reply.body(message_id), latency_ms=120.0)


def outcome_of(message: Any, answers: Sequence[str], rng: random.Random) -> Any:
    """The MessageResult a worker writes after these answers (worker/sending.py's rules)."""
    from stickerq.models import utcnow
    from stickerq.states import MessageStatus
    from stickerq.worker.outcomes import FINAL_STATUS, Action, classify
    from stickerq.worker.results import AttemptRecord, MessageResult

    records, reply, outcome = [], None, None
    for code in answers:
        reply = kaleyra_reply(code, "SBX" + uuid.UUID(int=rng.getrandbits(128)).hex)
        outcome = classify(reply)
        records.append(
            AttemptRecord(
                number=message.attempts + len(records) + 1,
                started_at=utcnow(),
                latency_ms=reply.latency_ms,
                http_status=reply.http_status,
                code=reply.code,
                action=outcome.action,
                detail=outcome.reason[:300] if outcome.action is not Action.SENT else None,
            )
        )
    assert reply is not None and outcome is not None
    result = MessageResult(
        pk=message.pk,
        status=MessageStatus.PENDING,
        attempts=records,
        total_attempts=message.attempts + len(records),
        delayed_retries=message.delayed_retries,
        code=reply.code if outcome.action is not Action.SENT else None,
        http_status=reply.http_status,
        detail=None if outcome.action is Action.SENT else outcome.reason[:300],
    )
    if outcome.action in FINAL_STATUS:
        result.status = FINAL_STATUS[outcome.action]
        result.message_id = reply.message_id if outcome.action is Action.SENT else None
    else:  # WA500 with a durable retry left: due now, so that the next claim takes it
        result.next_attempt_at = utcnow() - timedelta(seconds=1)
        result.delayed_retries += 1
    return result


def fill(
    url: str, prefix: str, recipients: int, seed: int, before: bool, vacuum_every: int
) -> Filled:
    """One campaign enqueued, sent and called back through the code's own statements."""
    from sqlalchemy import select

    from stickerq.db import make_engine, make_session_factory
    from stickerq.models import Message
    from stickerq.producer.api import enqueue_campaign
    from stickerq.producer.request import CampaignRequest

    rng = random.Random(seed)
    settings = common.make_settings(url, prefix, "http://127.0.0.1:9/")
    numbers = ",".join(f"+9198{10_000_000 + n:08d}" for n in range(recipients))
    request = CampaignRequest(sticker_id=STICKER_ID, to=numbers, ref="dec-promo", ref1="web")
    campaign_id = enqueue_campaign(settings, request).campaign_id
    common.forget_redis_keys(prefix)  # the dispatched batches: this script claims them
    engine = make_engine(url, pool_pre_ping=False)
    sessions = make_session_factory(engine)
    filled = Filled(messages=recipients)
    try:
        with sessions() as session:
            ids = list(session.scalars(select(Message.id).order_by(Message.id)))
        plans = {pk: _pick(rng) for pk in ids}
        callbacks = Callbacks(sessions, rng, filled)
        retries: list[int] = []
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            sent = send_batch(engine, sessions, campaign_id, batch, plans, rng, before, 0)
            retries += [pk for pk in batch if plans[pk][1] is not None]
            callbacks.after(sent, filled)
            if vacuum_every and (start // BATCH) % vacuum_every == vacuum_every - 1:
                vacuum(engine)
        for start in range(0, len(retries), BATCH):  # the durable retries, due later
            batch = retries[start : start + BATCH]
            sent = send_batch(engine, sessions, campaign_id, batch, plans, rng, before, 1)
            callbacks.after(sent, filled)
        callbacks.after([], filled)
        callbacks.after([], filled)
        with sessions() as session:
            filled.attempts = _count_attempts(session)
    finally:
        engine.dispose()
    return filled


def vacuum(engine: Any) -> None:
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        statement = "VACUUM messages, attempts" if engine.dialect.name == "postgresql" else ""
        if statement:
            connection.exec_driver_sql(statement)


def _pick(rng: random.Random) -> tuple[tuple[str, ...], str | None]:
    draw = rng.random()
    for share, first, later in MIX:
        if draw < share:
            return first, later
        draw -= share
    return MIX[-1][1], MIX[-1][2]


def send_batch(
    engine: Any,
    sessions: Any,
    campaign_id: int,
    batch: list[int],
    plans: dict[int, tuple[tuple[str, ...], str | None]],
    rng: random.Random,
    before: bool,
    claim_number: int,
) -> list[tuple[int, str]]:
    """Claim, mark, write: returns the (pk, message_id) of the messages sent."""
    from stickerq.states import MessageStatus
    from stickerq.worker.claims import claim
    from stickerq.worker.inflight import CLAIM_TOKEN_BYTES
    from stickerq.worker.leaving import MarkWriter
    from stickerq.worker.results import write_results

    # The worker's token (worker/inflight.py), or the uuid hex of the code before the cuts.
    random_bytes = rng.randbytes(CLAIM_TOKEN_BYTES if not before else 16)
    token = random_bytes.hex() if before else base64.urlsafe_b64encode(random_bytes).decode()
    with sessions.begin() as session:
        claimed = claim(session, campaign_id, batch, token)
    marks = MarkWriter(engine)
    pks = [message.pk for message in claimed]
    for start in range(0, len(pks), LEAVING_GROUP):
        marks.write({token: pks[start : start + LEAVING_GROUP]})
    marks.close()
    results = []
    for message in claimed:
        first, later = plans[message.pk]
        answers = first if claim_number == 0 else (later or "WA202",)
        results.append(outcome_of(message, answers, rng))
    with sessions.begin() as session:
        write_results(session, token, results, before_cuts=before)
    return [(r.pk, r.message_id) for r in results if r.status is MessageStatus.SENT]


class Callbacks:
    """Kaleyra's callbacks, a batch behind the sends: delivered (or failed), then read."""

    def __init__(self, sessions: Any, rng: random.Random, filled: Filled) -> None:
        self.sessions, self.rng = sessions, rng
        self.waiting_delivered: list[tuple[int, str]] = []
        self.waiting_read: list[tuple[int, str]] = []

    def after(self, sent: list[tuple[int, str]], filled: Filled) -> None:
        from stickerq.models import utcnow
        from stickerq.producer.callback_payloads import StatusCallback
        from stickerq.producer.callbacks import apply_callbacks
        from stickerq.sandbox.callbacks import OUTSIDE_WINDOW

        now = utcnow()
        batch: list[StatusCallback] = []
        for _pk, message_id in self.waiting_read:
            batch.append(StatusCallback(message_id, "read", now))
        self.waiting_read = []
        for pk, message_id in self.waiting_delivered:
            if self.rng.random() < CALLBACK_FAILED:
                error = OUTSIDE_WINDOW
                batch.append(
                    StatusCallback(
                        message_id, "failed", now, str(error["code"]), str(error["title"])
                    )
                )
                continue
            batch.append(StatusCallback(message_id, "delivered", now))
            if self.rng.random() < READ:
                self.waiting_read.append((pk, message_id))
        self.waiting_delivered = list(sent)
        for start in range(0, len(batch), CALLBACK_BATCH):
            with self.sessions.begin() as session:
                apply_callbacks(session, batch[start : start + CALLBACK_BATCH])
        filled.callbacks += len(batch)


def _count_attempts(session: Any) -> int:
    """API calls made, by the messages' own counts (a WA202 send has no `attempts` row)."""
    from sqlalchemy import func, select

    from stickerq.models import Message

    return int(session.scalar(select(func.sum(Message.attempts))))


# --------------------------------------------------------------------------- sizes


def postgres_sizes(url: str) -> dict[str, Size]:
    import psycopg

    sizes: dict[str, Size] = {}
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("VACUUM (ANALYZE)")
        for table in TABLES:
            heap, indexes, toast = db.execute(
                "SELECT pg_table_size(c.oid) - coalesce(pg_total_relation_size(reltoastrelid), 0),"
                " pg_indexes_size(c.oid), coalesce(pg_total_relation_size(reltoastrelid), 0) "
                "FROM pg_class c WHERE c.oid = %s::regclass",
                (table,),
            ).fetchone()  # type: ignore[misc]
            per_index = dict(
                db.execute(
                    "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) "
                    "FROM pg_index WHERE indrelid = %s::regclass ORDER BY 1",
                    (table,),
                ).fetchall()
            )
            sizes[table] = Size(heap, indexes, toast, per_index)
    return sizes


def sqlite_sizes(url: str) -> dict[str, Size]:
    import sqlite3

    from sqlalchemy import make_url

    path = make_url(url).database
    assert path
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        owner = dict(db.execute("SELECT name, tbl_name FROM sqlite_master"))
        sizes = {table: Size() for table in TABLES}
        try:
            pages = db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.OperationalError:  # an SQLite built without dbstat: the file alone
            common.log("SQLite has no dbstat table: only the file's size, after VACUUM")
            db.execute("VACUUM")
            pages = []
        for name, size in pages:
            table = owner.get(name, name)
            if table not in sizes:
                continue
            if name == table:
                sizes[table].heap += size
            else:
                sizes[table].indexes += size
                sizes[table].per_index[name] = size
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0] * page_size
        sizes["(free pages)"] = Size(heap=free)
        sizes["(file)"] = Size(heap=Path(path).stat().st_size)
    finally:
        db.close()
    return sizes


# --------------------------------------------------------------------------- the run


def measure(
    backend: str, revision: str, recipients: int, seed: int, before: bool, vacuum_every: int
) -> dict[str, Any]:
    database = postgres_database if backend == "postgresql" else sqlite_database
    with database(revision) as url, common.redis_prefix("storage") as prefix:
        common.log(f"{backend} at {revision}: filling {recipients:,} messages")
        filled = fill(url, prefix, recipients, seed, before, vacuum_every)
        sizes = postgres_sizes(url) if backend == "postgresql" else sqlite_sizes(url)
    return {"filled": filled, "sizes": sizes}


def as_json(figure: dict[str, Any]) -> dict[str, Any]:
    return {
        "filled": asdict(figure["filled"]),
        "bytes": {
            name: {**asdict(size), "total": size.total} for name, size in figure["sizes"].items()
        },
    }


def per_message(value: int, recipients: int) -> str:
    return fmt(value / recipients, ",.0f")


def report(
    backend: str, baseline: str, before: dict[str, Any], after: dict[str, Any], recipients: int
) -> float:
    """Print the backend's tables; returns head's bytes per message over the baseline's."""
    rows: list[list[str]] = []
    totals = [0, 0]

    def row(name: str, old: int, new: int) -> None:
        ratio = fmt(new / old, ".2f") if old else "-"
        rows.append([name, per_message(old, recipients), per_message(new, recipients), ratio])

    for table in TABLES:
        old, new = before["sizes"][table], after["sizes"][table]
        row(f"{table} heap", old.heap, new.heap)
        row(f"{table} indexes", old.indexes, new.indexes)
        if backend == "postgresql":
            row(f"{table} TOAST", old.toast, new.toast)
        row(f"{table} total", old.total, new.total)
        totals[0] += old.total
        totals[1] += new.total
    row("all", *totals)
    if backend == "sqlite":
        for extra in ("(free pages)", "(file)"):
            row(extra, before["sizes"][extra].heap, after["sizes"][extra].heap)
    filled = after["filled"]
    print_table(
        f"{backend}: bytes per message, {recipients:,} recipients, {filled.attempts:,} "
        f"attempts, {filled.callbacks:,} callbacks",
        ["", f"at {baseline}", "head", "head / before"],
        rows,
    )
    index_rows = []
    for table in TABLES:
        names = sorted(set(before["sizes"][table].per_index) | set(after["sizes"][table].per_index))
        for name in names:
            old = before["sizes"][table].per_index.get(name, 0)
            new = after["sizes"][table].per_index.get(name, 0)
            index_rows.append([name, per_message(old, recipients), per_message(new, recipients)])
    print_table(
        f"{backend}: each index, bytes per message", ["", f"at {baseline}", "head"], index_rows
    )
    return totals[1] / totals[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--backend", choices=["both", "postgresql", "sqlite"], default="both")
    parser.add_argument(
        "--vacuum-every",
        type=int,
        default=VACUUM_EVERY,
        help="VACUUM messages and attempts every N batches of 200 (0: only at the end)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--before", help="the baseline's revision (default: the one before the storage cuts)"
    )
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args(argv)
    baseline = args.before or before_revision()
    print(common.machine_line())
    backends = ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]
    figures: dict[str, Any] = {}
    for backend in backends:
        runs = args.recipients, args.seed
        before = measure(backend, baseline, *runs, before=True, vacuum_every=args.vacuum_every)
        after = measure(backend, "head", *runs, before=False, vacuum_every=args.vacuum_every)
        ratio = report(backend, baseline, before, after, args.recipients)
        figures[backend] = {"before": as_json(before), "after": as_json(after), "ratio": ratio}
    print()
    for backend, figure in figures.items():
        print(f"  {backend}: head / {baseline} = {figure['ratio']:.2f} of the bytes per message")
    dump_json(args.json, {"recipients": args.recipients, "baseline": baseline, **figures})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
