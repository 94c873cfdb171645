"""A process that reserves an idempotency key and stops there until told to store, or killed:
the first request of a key, held where a test wants it (a live but stuck owner, or a dead one).

`python -m tests.key_holder DATABASE_URL REDIS_PREFIX KEY BODY` reserves KEY for BODY (a
POST /campaigns JSON body, read as the HTTP API reads it), prints `reserved`, waits for a line
on stdin, then stores the campaign and prints its id.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import text

from stickerq.db import make_engine
from stickerq.producer.key_owners import lock_ids
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 60.0  # the interpreter's start and imports, on a loaded machine


class KeyHolder:
    """`with KeyHolder(database_url, prefix, key, body) as holder:` the key is reserved by a
    live process from here; `holder.store()` lets it store, `holder.kill()` SIGKILLs it."""

    def __init__(self, database_url: str, redis_prefix: str, key: str, body: dict[str, Any]):
        self.database_url, self.key = database_url, key
        self._args = [database_url, redis_prefix, key, json.dumps(body)]
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> KeyHolder:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.key_holder", *self._args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], START_SECONDS)
        line = self.process.stdout.readline() if ready else ""
        if line.strip() != "reserved":
            self.process.kill()
            raise AssertionError(f"the key holder did not reserve: {self.process.stderr.read()}")
        return self

    def store(self) -> int:
        """Let the held request store its campaign; its id."""
        assert self.process is not None and self.process.stdin is not None
        out, err = self.process.communicate("go\n", timeout=60)
        assert self.process.returncode == 0, err
        return int(out.split()[-1])

    def kill(self) -> None:
        """SIGKILL the holder mid-store, and wait until the database knows it is gone (its
        process reaped; on PostgreSQL, its connection closed and the key's lock released)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        if self.database_url.startswith("postgresql"):
            wait_until(lambda: not self._locked(), timeout=10)

    def _locked(self) -> bool:
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as connection:
                classid, objid = lock_ids(self.key)
                held = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                        " WHERE l.locktype = 'advisory' AND d.datname = current_database()"
                        " AND l.classid = CAST(:c AS oid) AND l.objid = CAST(:o AS oid)"
                    ),
                    {"c": classid, "o": objid % 2**32},
                ).scalar()
        finally:
            engine.dispose()
        return bool(held)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=30)


def main(database_url: str, redis_prefix: str, key: str, body: str) -> None:
    from stickerq.api.uploads import json_body
    from stickerq.producer import idempotency
    from tests.conftest import make_settings

    store = idempotency.send_campaign

    def held(*args: Any, **kwargs: Any) -> Any:
        print("reserved", flush=True)  # the key is reserved and this process owns it
        sys.stdin.readline()
        return store(*args, **kwargs)

    idempotency.send_campaign = held  # type: ignore[assignment]
    settings = make_settings(database_url, redis_prefix, "http://127.0.0.1:9")
    parsed = json_body(body.encode())
    sent = idempotency.send_campaign_once(
        settings, key, parsed.request(to=parsed.joined()), parsed.timing()
    )
    print(sent.campaign_id, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
