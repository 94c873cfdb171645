"""`window import` on both backends: a CRM's CSV of incoming messages into the window ledger,
its columns in any order and its numbers and times in each form Kaleyra or a person writes;
a pair keeps its latest time; a file with a bad row stores nothing and names each bad cell
by line and column; a failure while storing rolls everything back; a million rows in flat
memory."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.models import CustomerWindow
from stickerq.producer import window_import
from stickerq.producer.window_csv import MAX_SHOWN, ImportStep, WindowImportError
from stickerq.producer.window_import import WindowImportResult, import_windows
from stickerq.settings import Settings
from stickerq.window_ledger import Inbound, record_inbound
from tests.conftest import make_settings

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
EPOCH = int(NOW.timestamp())
A, B = "+919812340001", "+919812340002"  # customers
S1, S2 = "+919000000001", "+919000000002"  # business numbers


@pytest.fixture
def settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(database_url, redis_prefix, "http://127.0.0.1:9")


def ledger(sessions: sessionmaker[Session]) -> dict[tuple[str, str], tuple[datetime, str | None]]:
    with sessions() as session:
        rows = session.execute(
            select(
                CustomerWindow.sender,
                CustomerWindow.customer,
                CustomerWindow.last_inbound_at,
                CustomerWindow.last_type,
            )
        ).all()
    return {(s, c): (at, kind) for s, c, at, kind in rows}


def write(tmp_path: Path, text: str, name: str = "windows.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_columns_in_any_order_numbers_and_times_in_every_form(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    csv = write(
        tmp_path,
        "name;created_at;wanumber;from;type\n"  # a semicolon file, as some spreadsheets write
        f"x;{EPOCH - 3600};{S1.removeprefix('+')};{A.removeprefix('+')};text\n"
        f"y;{EPOCH - 60}.25;{S1};+91 98123-40002;image\n"
        "\n"
        f"z;2026-12-07T14:30:00+05:30;+91 90000 00002;{A};\n",
    )
    steps: list[ImportStep] = []

    result = import_windows(
        settings, csv, now=NOW, on_progress=steps.append, sessions=sessions, actor="tester"
    )

    assert (result.rows, result.pairs, result.customers, result.senders) == (3, 3, 2, 2)
    assert result.first_inbound_at == NOW - timedelta(hours=3)
    assert result.last_inbound_at == NOW - timedelta(seconds=59.75)
    assert ledger(sessions) == {
        (S1, A): (NOW - timedelta(hours=1), "text"),
        (S1, B): (NOW - timedelta(seconds=59.75), "image"),
        (S2, A): (NOW - timedelta(hours=3), None),  # 14:30 in India is 09:00 UTC
    }
    assert steps[-1] == ImportStep("store", 3, 3)
    assert ImportStep("check", csv.stat().st_size, csv.stat().st_size) in steps


def test_a_reimport_keeps_each_pairs_latest_time(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    first = write(
        tmp_path,
        f"from,wanumber,created_at\n{A},{S1},{EPOCH - 100}\n{B},{S1},{EPOCH - 500}\n"
        f"{A},{S1},{EPOCH - 900}\n",  # an older message of the same pair, later in the file
        "first.csv",
    )
    import_windows(settings, first, now=NOW, sessions=sessions, actor="tester")
    again = write(
        tmp_path,
        f"from,wanumber,created_at,type\n{A},{S1},{EPOCH - 7200},text\n"
        f"{B},{S1},{EPOCH - 5},sticker\n",
        "again.csv",
    )

    result = import_windows(settings, again, now=NOW, sessions=sessions, actor="tester")

    assert (result.rows, result.pairs) == (2, 2)
    assert ledger(sessions) == {
        (S1, A): (NOW - timedelta(seconds=100), None),  # the ledger's was later: kept
        (S1, B): (NOW - timedelta(seconds=5), "sticker"),
    }


def test_bad_rows_store_nothing_and_are_named_by_line_and_column(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions.begin() as session:
        record_inbound(session, [Inbound(S1, A, NOW - timedelta(days=2))])
    before = ledger(sessions)
    soon = EPOCH + 60  # within the skew allowed for clocks: taken
    csv = write(
        tmp_path,
        "from,wanumber,created_at\n"
        f"{B},{S1},{soon}\n"
        f"123,{S1},{EPOCH}\n"
        f"{B},{S1},{EPOCH}000\n"
        f'"{B}",abc,2026-12-07T09:00:00\n'
        f"{A},{S2},{EPOCH + 3600}\n"
        f"{A},{S2}\n",
    )

    with pytest.raises(WindowImportError) as refused:
        import_windows(settings, csv, now=NOW, sessions=sessions, actor="tester")

    error = refused.value
    assert error.bad_rows == 5
    assert [(p.line, p.column) for p in error.problems] == [
        (3, "from"),
        (4, "created_at"),
        (5, "wanumber"),
        (5, "created_at"),
        (6, "created_at"),
        (7, "created_at"),
    ]
    reasons = [p.reason for p in error.problems]
    assert "too short" in reasons[0]
    assert "milliseconds" in reasons[1]
    assert "no offset" in reasons[3]
    assert "in the future" in reasons[4]
    assert reasons[5] == "the cell is empty"
    message = str(error)
    assert "5 bad row(s), nothing was stored" in message
    assert "line 3, from '123'" in message and "line 5, wanumber 'abc'" in message
    assert "digits with the country code first" in message and "ISO 8601" in message
    assert "line 3" not in error.summary and "import the file again" in error.summary
    assert ledger(sessions) == before


def test_only_the_first_bad_cells_are_listed_the_rest_counted(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = "".join(f"{A},{S1},not-a-time\n" for _ in range(MAX_SHOWN + 5))
    csv = write(tmp_path, f"from,wanumber,created_at\n{rows}")
    with pytest.raises(WindowImportError, match=r"and 5 more bad cell\(s\)") as refused:
        import_windows(settings, csv, now=NOW, sessions=sessions, actor="tester")
    assert refused.value.bad_rows == MAX_SHOWN + 5
    assert len(refused.value.problems) == MAX_SHOWN


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"phone,when\n+919812340001,1\n", r"line 1: no 'from', 'wanumber' or 'created_at'"),
        (b"phone,when\n", r"\(found: phone, when\)"),
        (b"from,wanumber\n", r"no 'created_at' column"),
        (b"\n\n", "the file is empty"),
        (b"from,wanumber,created_at\n\xff\n", "line 2: the file is not UTF-8"),
        (b"from,wanumber,created_at\n1,\x00\n", "NUL byte"),
        (b'from,wanumber,created_at\n"' + b"x" * 200_000, "line 2: not a valid CSV file"),
    ],
)
def test_an_unusable_file_is_refused_saying_where_and_why(
    settings: Settings,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    content: bytes,
    expected: str,
) -> None:
    csv = tmp_path / "windows.csv"
    csv.write_bytes(content)
    with pytest.raises(WindowImportError, match=expected):
        import_windows(settings, csv, now=NOW, sessions=sessions, actor="tester")
    assert ledger(sessions) == {}


def test_a_failure_while_storing_rolls_back_every_chunk_stored(
    settings: Settings,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(window_import, "STORE_CHUNK", 2)
    rows = "".join(f"+9198123400{n:02d},{S1},{EPOCH - n}\n" for n in range(7))
    csv = write(tmp_path, f"from,wanumber,created_at\n{rows}")
    stored = []

    def record_then_fail(session: Session, messages: list[Inbound]) -> int:
        if len(stored) == 2:
            raise ConnectionError("the database went away")
        stored.append(record_inbound(session, messages))
        return stored[-1]

    monkeypatch.setattr(window_import, "record_inbound", record_then_fail)
    with pytest.raises(ConnectionError):
        import_windows(settings, csv, now=NOW, sessions=sessions, actor="tester")
    assert stored == [2, 2] and ledger(sessions) == {}

    monkeypatch.setattr(window_import, "record_inbound", record_inbound)
    result = import_windows(
        settings, csv, now=NOW, sessions=sessions, actor="tester"
    )  # nothing left behind
    assert (result.rows, result.pairs, len(ledger(sessions))) == (7, 7, 7)


# --- a million rows -----------------------------------------------------------------------

MILLION = 1_000_000
CUSTOMERS = 5_000  # each writes in bursts of ten messages, again and again


def crm_export(path: Path, rows: int) -> None:
    """A CRM's export of incoming messages, oldest first: conversations of ten messages, a
    customer's next one after the other customers' (a generator: never held whole)."""
    start = EPOCH - rows
    lines = (
        f"{919800000000 + (n // 10) % CUSTOMERS},{919000000000 + (n // 10) % 3},{start + n},text\n"
        for n in range(rows)
    )
    with path.open("w", encoding="utf-8") as out:
        out.write("from,wanumber,created_at,type\n")
        out.writelines(lines)


class PeakRss:
    """The process's resident memory sampled every 10 ms; `growth` is the peak over the RSS
    when sampling began."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.base = self.peak = self.process.memory_info().rss
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def growth(self) -> int:
        return self.peak - self.base

    def _sample(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)


def imported_with_peak(settings: Settings, path: Path) -> tuple[WindowImportResult, int]:
    """Import the file; the result, and how much the process's RSS grew meanwhile."""
    rss = PeakRss()
    rss.thread.start()
    try:
        result = import_windows(settings, path, now=NOW, actor="tester")
    finally:
        rss.stop.set()
        rss.thread.join()
    return result, rss.growth


def test_a_million_rows_are_imported_in_flat_memory(sqlite_database: str, tmp_path: Path) -> None:
    """SQLite only: PostgreSQL holds the same here, and takes longer (its upserts). The file
    is 42 MB; its rows as objects would take hundreds. A tenth of it goes first, so what any
    import allocates once (caches, compiled statements, the connection) is counted there."""
    settings = make_settings(sqlite_database, "unused:", "http://127.0.0.1:9")
    tenth, whole = tmp_path / "tenth.csv", tmp_path / "million.csv"
    crm_export(tenth, MILLION // 10)
    crm_export(whole, MILLION)
    _, small = imported_with_peak(settings, tenth)
    started = time.monotonic()

    result, large = imported_with_peak(settings, whole)

    took = time.monotonic() - started
    print(f"1M rows: {took:.1f} s, RSS +{large / 1e6:.1f} MB (100k rows: +{small / 1e6:.1f} MB)")
    assert large < 40e6, f"the import grew the process by {large / 1e6:.0f} MB"
    assert large < small + 8e6, f"{large / 1e6:.1f} MB for 1M rows, {small / 1e6:.1f} for 100k"
    # a conversation's customer and business number repeat every lcm(CUSTOMERS, 3) of them
    assert (result.rows, result.pairs, result.customers, result.senders) == (
        MILLION,
        CUSTOMERS * 3,
        CUSTOMERS,
        3,
    )
    assert result.last_inbound_at == NOW - timedelta(seconds=1)
