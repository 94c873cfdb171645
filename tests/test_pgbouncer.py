"""Behind PgBouncer in transaction mode: Debian's pgbouncer, started here on a free port in
front of the tests' PostgreSQL, with fewer server connections than clients, so that
transactions of different clients take turns on them. Through it: the migrations, a campaign
sent by a real worker, the callbacks, the HTTP API and the send path's plans. And the reason
for `?pooler=pgbouncer`: without it psycopg prepares a statement that the next transaction,
on another server connection, cannot find."""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine, event, func, make_url, select
from sqlalchemy.exc import ProgrammingError

from stickerq import export
from stickerq.api import create_app
from stickerq.api.served import ServedApi
from stickerq.counts import campaign_counts, counted_from_rows
from stickerq.db import connect_psycopg, lacks_schema, make_engine, open_sessions
from stickerq.migrate import downgrade, head, upgrade
from stickerq.models import Base, Campaign, Message
from stickerq.producer.failures import histories
from stickerq.sandbox import SandboxConfig, SandboxServer
from stickerq.settings import Settings
from tests.conftest import (
    PG_ADMIN_URL,
    SENDER,
    STICKER_ID,
    TEST_API_KEY,
    make_settings,
    own_postgres_database,
    wait_until,
)
from tests.worker.test_plans import (
    assert_each_statement_read_only_its_rows,
    big_database,  # noqa: F401  (a fixture: this module's own database of the plans' size)
    send_path_scenarios,
)

ROOT = Path(__file__).resolve().parents[1]
PGBOUNCER = "/usr/sbin/pgbouncer"
# Server connections per database and user: fewer than this module's clients (a worker's
# pools, its leaving connection, the API's pools and idempotency locks), more than any one of
# them holds at once (a keyed campaign store holds two: its lock and its store).
SERVER_CONNECTIONS = 4
TOKEN = "pgbouncer-rw-token-6c1e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CALLBACK_SECRET = "pgbouncer-callbacks-5d0b"


@dataclass
class PgBouncer:
    port: int
    log: Path

    def url(self, direct: str, *, named: bool = True) -> str:
        """`direct` (a database of the tests' PostgreSQL) reached through this pgbouncer;
        named: with `?pooler=pgbouncer`, as a deployment behind it sets."""
        pooled = make_url(direct).set(host="127.0.0.1", port=self.port)
        if named:
            pooled = pooled.update_query_dict({"pooler": "pgbouncer"})
        return pooled.render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def pgbouncer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgBouncer]:
    """pgbouncer in transaction mode in front of PG_ADMIN_URL's server, any database on it.
    Installed by scripts/ensure-pgbouncer.sh (as `make test` does); never skipped."""
    installed = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure-pgbouncer.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if installed.returncode != 0:
        pytest.fail(f"no pgbouncer for the PgBouncer tests: {installed.stderr.strip()}")
    server = make_url(PG_ADMIN_URL)
    folder = tmp_path_factory.mktemp("pgbouncer")
    port = free_port()
    users = folder / "users.txt"
    users.write_text(f'"{server.username}" ""\n')
    config = folder / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host={server.host} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {users}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {SERVER_CONNECTIONS}\n"
        "max_client_conn = 500\n"
    )
    command = [PGBOUNCER, str(config)]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root; it reads its files first
        command[1:1] = ["--user", "nobody"]
    log = folder / "pgbouncer.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: process.poll() is not None or accepts(port), timeout=10)
        if process.poll() is not None:
            pytest.fail(f"pgbouncer did not start: {log.read_text()}")
        yield PgBouncer(port, log)
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_again_on_another_server(url: str) -> Engine:
    """One statement run in 8 transactions (psycopg prepares from the 5th), then once more
    while another client holds the server connection those ran on: pgbouncer (LIFO) gives
    that client the server last released, so the statement goes to another one."""
    engine = make_engine(url, pool_size=1, max_overflow=0)
    statement = select(func.count()).select_from(Campaign).where(Campaign.id > 0)
    with engine.connect() as connection:
        for _ in range(8):
            connection.execute(statement)
            connection.commit()
        plain = make_url(url).difference_update_query(["pooler"])
        with psycopg.connect(plain.render_as_string(hide_password=False)) as other:
            other.execute("SELECT 1")  # in a transaction: it keeps its server connection
            connection.execute(statement)
            connection.commit()
    return engine


def test_without_the_pooler_named_a_prepared_statement_is_lost_behind_pgbouncer(
    pgbouncer: PgBouncer, pg_database: str
) -> None:
    """What `?pooler=pgbouncer` is for; and proof that the tests below can fail."""
    with pytest.raises(ProgrammingError, match=r"prepared statement .* does not exist") as lost:
        run_again_on_another_server(pgbouncer.url(pg_database, named=False)).dispose()
    assert not lacks_schema(lost.value)  # no "run stickerq db upgrade" for this one


def test_with_the_pooler_named_nothing_is_prepared(pgbouncer: PgBouncer, pg_database: str) -> None:
    engine = run_again_on_another_server(pgbouncer.url(pg_database))
    try:
        with engine.connect() as connection:
            driver = connection.connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            assert driver.prepare_threshold is None
    finally:
        engine.dispose()
    # the leaving thread's own connection (worker/leaving.py) too; libpq never sees `pooler`
    with connect_psycopg(make_url(pgbouncer.url(pg_database)), autocommit=True) as own:
        assert own.prepare_threshold is None
        assert own.execute("SELECT 1").fetchone() == (1,)


@pytest.fixture
def new_database() -> Iterator[str]:
    """An empty database of this test's own (no schema)."""
    with own_postgres_database("stickerq_pgbouncer") as url:
        yield url


def stickerq_command(database_url: str, *args: str) -> str:
    env = {**os.environ, "STICKERQ_DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "stickerq", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_migrations_run_through_pgbouncer(pgbouncer: PgBouncer, new_database: str) -> None:
    pooled = pgbouncer.url(new_database)
    stickerq_command(pooled, "db", "upgrade")
    assert "(head)" in stickerq_command(pooled, "db", "current")
    engine = make_engine(pooled)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        downgrade(pooled, "base")
        upgrade(pooled)
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == head()
    finally:
        engine.dispose()


def pooled_settings(
    pooled: str, redis_prefix: str, kaleyra_url: str, **overrides: object
) -> Settings:
    return make_settings(
        pooled,
        redis_prefix,
        kaleyra_url,
        api_tokens=TOKEN,
        callback_secret=CALLBACK_SECRET,
        dispatch_interval_seconds=0.5,
        **overrides,
    )


RECIPIENTS = [f"+9198765{n:05d}" for n in range(150)]
SUPPRESSED = RECIPIENTS[7]  # on the account's list before the campaign: never sent
QUICK_RETRY = RECIPIENTS[10:15]  # a WA500, then accepted on the quick retry
DURABLE_RETRY = RECIPIENTS[20:23]  # WA500 on every quick attempt: beat sends it again later


@pytest.mark.timeout(120)
def test_a_campaign_runs_end_to_end_through_pgbouncer(
    pgbouncer: PgBouncer,
    pg_database: str,
    redis_prefix: str,
    spawn_worker: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The API stores the campaign (COPY into a temporary table; its Idempotency-Key under
    an advisory lock), a worker process and its beat send it, the sandbox's callbacks come
    back to a served API, and the report and the export (a server-side cursor, fetched many
    times) read it: every connection through pgbouncer."""
    pooled = pgbouncer.url(pg_database)
    api_settings = pooled_settings(pooled, redis_prefix, "http://127.0.0.1:9")
    with ServedApi(create_app(api_settings)) as receiver:
        config = SandboxConfig(
            api_key=TEST_API_KEY,
            senders=frozenset({SENDER}),
            callback_url=f"{receiver.url}/callbacks/kaleyra/{CALLBACK_SECRET}",
        )
        with SandboxServer(config) as sandbox:
            settings = pooled_settings(pooled, redis_prefix, sandbox.url)
            sandbox.script(
                {number: ["WA500", "WA202"] for number in QUICK_RETRY}
                | {number: ["WA500"] * 3 + ["WA202"] for number in DURABLE_RETRY}
            )
            client = TestClient(create_app(settings))
            added = client.post(
                "/suppressions", json={"numbers": [SUPPRESSED], "reason": "STOP"}, headers=AUTH
            )
            assert added.status_code == 200, added.text
            spawn_worker(settings, "--beat", "--concurrency", "2")
            body = {"sticker_id": STICKER_ID, "recipients": RECIPIENTS}
            keyed = {**AUTH, "Idempotency-Key": "pgbouncer-campaign-1"}
            created = client.post("/campaigns", json=body, headers=keyed)
            assert created.status_code == 201, created.text
            campaign_id = created.json()["campaign_id"]
            assert created.json()["suppressed_at_enqueue"] == 1
            again = client.post("/campaigns", json=body, headers=keyed)
            assert (again.status_code, again.json()["campaign_id"]) == (200, campaign_id)

            sendable = len(RECIPIENTS) - 1
            wait_until(lambda: statuses(pg_database)["read"] == sendable, timeout=60, interval=0.2)
            wait_until(lambda: sandbox.callbacks()["pending"] == 0, timeout=10)
            accepted = Counter(send["recipient"] for send in sandbox.accepted())
            refused = sandbox.callbacks()["refused"]

            report = client.get(f"/campaigns/{campaign_id}/report", headers=AUTH)
            monkeypatch.setattr(export, "ROWS_PER_FETCH", 20)  # FETCH from the cursor 8 times
            exported = client.get(f"/campaigns/{campaign_id}/export.csv", headers=AUTH)

    # every message sent once, the suppressed one never
    assert accepted == Counter({number: 1 for number in RECIPIENTS if number != SUPPRESSED})
    assert refused == 0
    assert statuses(pg_database) == Counter({"read": sendable})
    with open_sessions(pg_database) as sessions, sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.status == "completed"
        # the counters the triggers kept are the rows' own
        assert campaign_counts(session, campaign_id) == counted_from_rows(session, campaign_id)
        messages = histories(session, Message.campaign_id == campaign_id)
    tries = {message.recipient: len(message.attempts) for message in messages}
    assert {tries[n] for n in QUICK_RETRY} == {2} and {tries[n] for n in DURABLE_RETRY} == {4}
    assert sum(tries.values()) == sendable + len(QUICK_RETRY) + 3 * len(DURABLE_RETRY)

    assert report.status_code == 200, report.text
    totals = report.json()
    assert (totals["sent"], totals["delivered"], totals["read"]) == (sendable,) * 3, totals
    assert totals["by_status"]["read"] == sendable, totals
    assert exported.status_code == 200, exported.text
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(row["recipient"].lstrip("'") for row in rows) == sorted(
        n for n in RECIPIENTS if n != SUPPRESSED
    )
    assert {row["status"] for row in rows} == {"read"}


def statuses(database_url: str) -> Counter[str]:
    with open_sessions(database_url) as sessions, sessions() as session:
        return Counter(session.scalars(select(Message.status)))


@pytest.mark.timeout(120)
def test_the_send_path_reads_only_its_rows_through_pgbouncer(
    pgbouncer: PgBouncer,
    big_database: str,  # noqa: F811
) -> None:
    """tests/worker/test_plans.py's property, for the statements as they run through the
    pooler: never prepared by psycopg, each in a transaction of its own server connection."""
    thresholds: set[int | None] = set()

    def seen(_conn: Any, cursor: Any, *_: Any) -> None:
        thresholds.add(cursor.connection.prepare_threshold)

    event.listen(Engine, "before_cursor_execute", seen)  # every engine: the one made inside
    try:
        scenarios = send_path_scenarios(big_database, pgbouncer.url(big_database))
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert thresholds == {None}
    assert_each_statement_read_only_its_rows(scenarios)


def test_a_client_gone_mid_transaction_takes_its_advisory_lock_along(
    pgbouncer: PgBouncer, pg_database: str
) -> None:
    """producer/key_owners.py's proof of life behind pgbouncer: a transaction-level lock held
    by a client that disconnects is released (pgbouncer closes that server connection)."""
    from stickerq.producer.key_owners import lock_ids

    pooled = make_url(pgbouncer.url(pg_database)).difference_update_query(["pooler"])
    plain = pooled.render_as_string(hide_password=False)
    classid, objid = lock_ids("pgbouncer-owner")
    take = "SELECT pg_try_advisory_xact_lock(%s, %s)"
    owner = psycopg.connect(plain)
    assert owner.execute(take, (classid, objid)).fetchone() == (True,)
    with psycopg.connect(plain) as other:
        assert other.execute(take, (classid, objid)).fetchone() == (False,)
        other.rollback()
        owner.pgconn.finish()  # gone without a rollback: as a process that died

        def taken() -> bool:
            got = other.execute(take, (classid, objid)).fetchone() == (True,)
            other.rollback()
            return got

        wait_until(taken, timeout=5)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://u@h:6432/db?pooler=pgcat", "give pooler=pgbouncer"),
        ("sqlite:////tmp/stickerq.db?pooler=pgbouncer", "only on a postgresql:// URL"),
    ],
)
def test_a_pooler_stickerq_cannot_use_is_refused_saying_what_to_give(url: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        Settings(database_url=url)
