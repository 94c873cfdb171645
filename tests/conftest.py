"""Fixtures on real services: Redis with a key prefix per test, a PostgreSQL database per
test run (and SQLite files), a running sandbox and a real Celery worker."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
import redis
from celery.contrib.testing.worker import start_worker
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from stickerq.db import make_engine, make_session_factory
from stickerq.migrate import upgrade
from stickerq.models import Base
from stickerq.queue import app as celery_app
from stickerq.queue import configure_celery, worker_queues
from stickerq.sandbox import SandboxConfig, SandboxServer
from stickerq.settings import Settings
from stickerq.webhook_outbox import forget_subscribers
from stickerq.worker import runtime

if TYPE_CHECKING:
    from tests.redis_servers import SentinelTopology

# pytest-xdist gives its workers COLUMNS=80 and LINES=24. rich fixes a console's width from
# COLUMNS when the console is made (at import), while the CLI tests give each command a width
# of its own: the workers must not carry one.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)

SERIAL_HOME = Path(__file__).parent / "worker"  # `make test` runs `-m serial` on it alone


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked serial outside tests/worker would never run in `make test`: its serial
    part collects only that folder (collecting all of tests/ again took seconds)."""
    strays = [
        item.nodeid
        for item in items
        if item.get_closest_marker("serial") and not item.path.is_relative_to(SERIAL_HOME)
    ]
    if strays:
        raise pytest.UsageError(
            f"tests marked serial outside tests/worker, which make test would skip: {strays}; "
            "move them there or change the Makefile's serial line"
        )


REDIS_URL = os.environ.get("STICKERQ_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN_URL = os.environ.get("STICKERQ_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
RUN_ID = uuid.uuid4().hex[:8]
TEST_API_KEY = "test-key-7f3a9c1e5b"  # tests grep for it in logs and tables


@pytest.fixture(autouse=True)
def _fresh_webhook_subscribers() -> None:
    """Each process keeps the endpoints that subscribe to each event for a few seconds, per
    database URL; tests reuse one PostgreSQL database, so each starts without that memory."""
    forget_subscribers()


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:  # fail loudly: a skipped suite proves nothing
        pytest.exit(
            f"Redis is not reachable at {REDIS_URL} ({exc}). Start it with: "
            "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no",
            returncode=3,
        )
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"stickerq-test:{RUN_ID}:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test run's own, migrated with Alembic, dropped at the end."""
    name = f"stickerq_test_{RUN_ID}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.exit(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc}). Start it with: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
            returncode=3,
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    # a fresh connection: a test may have restarted the server meanwhile
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=30) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@contextmanager
def own_postgres_database(prefix: str) -> Iterator[str]:
    """An empty PostgreSQL database of the caller's own (no schema: migrate it if needed),
    dropped afterwards: for tests that need tables no other test has given statistics to."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:  # a fresh connection: a test may have restarted the server meanwhile
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=30) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


# The tables a test left rows in or drew ids from: TRUNCATE of all fourteen takes 60 ms a
# test, of these few about 10, and a thousand tests start on PostgreSQL.
_USED_TABLES = text(
    " UNION ALL ".join(
        f"SELECT '{table.name}' WHERE EXISTS (SELECT FROM {table.name})"
        for table in Base.metadata.sorted_tables
    )
    + """ UNION
    SELECT owner.relname FROM pg_sequences used
    JOIN pg_class sequence ON sequence.relname = used.sequencename AND sequence.relkind = 'S'
    JOIN pg_depend owned ON owned.objid = sequence.oid AND owned.deptype IN ('a', 'i')
    JOIN pg_class owner ON owner.oid = owned.refobjid
    WHERE used.schemaname = current_schema() AND used.last_value IS NOT NULL"""
)


@pytest.fixture
def pg_database(postgres_url: str) -> str:
    """The run's PostgreSQL database, emptied for this test, its ids starting at 1 again."""
    engine = make_engine(postgres_url)
    with engine.begin() as connection:
        used = connection.execute(_USED_TABLES).scalars().all()
        if used:
            connection.execute(text(f"TRUNCATE {', '.join(used)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return postgres_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per run (tests/test_migrations.py migrates its own)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "stickerq.db"
    upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:  # everything in the file itself, not its WAL
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def sqlite_database(tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated SQLite file of this test's own: a copy of the template."""
    path = tmp_path / "stickerq.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Storage tests run on both backends."""
    fixture = "sqlite_database" if request.param == "sqlite" else "pg_database"
    return request.getfixturevalue(fixture)


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def wait_until(
    predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05
) -> object:
    """Poll until predicate() is truthy; fail with its last value otherwise."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s (last value: {value!r})")
        time.sleep(interval)
        value = predicate()
    return value


SENDER = "+919000000001"
STICKER_ID = "798123456789012"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    config = SandboxConfig(api_key=TEST_API_KEY, senders=frozenset({SENDER}), timeout_seconds=2)
    with SandboxServer(config) as server:
        yield server


def make_settings(
    database_url: str, redis_prefix: str, base_url: str, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "redis_prefix": redis_prefix,
        "kaleyra_base_url": base_url,
        "kaleyra_api_key": TEST_API_KEY,
        "sender": SENDER,
        "rate_per_second": 1000.0,
        "batch_size": 50,
        "in_flight": 20,
        "read_timeout": 1.0,
        "connect_timeout": 1.0,
        "quick_attempts": 3,
        "quick_backoff_seconds": 0.01,
        "retry_delays_seconds": [0.2, 0.2],
        "connect_retry_seconds": 60.0,
        # Tests send to the same few numbers again and again; the pair guard's own tests
        # (tests/worker/test_pair_guard.py) turn it on.
        "pair_interval_seconds": 0.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(pg_database: str, redis_prefix: str, sandbox: SandboxServer) -> Settings:
    return make_settings(pg_database, redis_prefix, sandbox.url)


@pytest.fixture
def run_worker(redis_prefix: str) -> Iterator[Callable[[Settings], None]]:
    """Start a real Celery worker (threads pool, in this process) on the given settings.

    Depends on redis_prefix so that the worker stops before the prefix's keys are deleted."""
    stack = ExitStack()

    def start(settings: Settings) -> None:
        configure_celery(settings)
        # The worker's BRPOP gives up every tenth of a second, not every second, so its thread
        # sees the stop at once: 0.85 s a test otherwise (kombu's hub waits out the BRPOP).
        options = celery_app.conf.broker_transport_options
        celery_app.conf.broker_transport_options = {**options, "polling_interval": 0.1}
        runtime.configure(settings)
        stack.enter_context(
            start_worker(
                celery_app,
                pool="threads",
                concurrency=2,
                perform_ping_check=False,
                queues=worker_queues(),
                loglevel="WARNING",
                shutdown_timeout=15,
            )
        )

    yield start
    stack.close()
    runtime.shutdown()


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[SentinelTopology]:
    """A Redis master, its replica and three Sentinels of the test's own, started."""
    from tests.redis_servers import SentinelTopology  # it imports this module

    servers = SentinelTopology(tmp_path / "redis")
    servers.start()
    yield servers
    servers.stop()


@pytest.fixture
def spawn_worker(tmp_path: Path, redis_prefix: str) -> Iterator[Callable[..., Path]]:
    """Start `stickerq worker` as a real process; returns the file its output goes to."""
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(settings: Settings, *args: str) -> Path:
        log_file = tmp_path / f"worker-{len(processes)}.log"
        env = {**os.environ, **settings.as_environment()}
        with log_file.open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "stickerq", "worker", "--loglevel", "INFO", *args],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its pool processes go with it
                )
            )
        return log_file

    yield spawn
    for process in processes:  # SIGKILL: a warm shutdown would cost the teardown 1-3 s
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
