"""`stickerq api` with STICKERQ_LOG_FORMAT=json: uvicorn's own lines (start-up, access log)
come out as JSON objects too, with no token in them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import make_settings, wait_until

TOKEN = "api-t0ken-9876-5432"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_api_logs_json_lines_without_tokens(
    sqlite_database: str, redis_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(
        sqlite_database, redis_prefix, "http://127.0.0.1:9", log_format="json", api_tokens=TOKEN
    )
    port = free_port()
    log_file = tmp_path / "api.log"
    with log_file.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "stickerq", "api", "--port", str(port)],
            env={**os.environ, **settings.as_environment()},
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:

        def answered() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success
            except httpx.HTTPError:
                return False

        wait_until(answered, timeout=20, interval=0.1)
        # a token where it does not belong (a query string) must not reach the access log
        assert httpx.get(f"http://127.0.0.1:{port}/metrics?t={TOKEN}").status_code == 200
        wait_until(lambda: "/metrics" in log_file.read_text(), timeout=5)
    finally:
        server.terminate()
        server.wait(timeout=10)
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any("/metrics?t=***" in line["message"] for line in access), lines
    assert any(line["logger"] == "uvicorn.error" for line in lines)
    assert TOKEN not in log_file.read_text()
