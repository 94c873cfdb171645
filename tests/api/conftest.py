"""The API on a real database (SQLite and PostgreSQL) and Redis, through FastAPI's TestClient."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from stickerq.api import create_app
from stickerq.db import open_sessions
from tests.conftest import make_settings

TOKEN = "rw-token-1234-abcd"
READ_ONLY = "ro-token-5678-efgh"
WRITE = {"Authorization": f"Bearer {TOKEN}"}
READ = {"Authorization": f"Bearer {READ_ONLY}"}
BODY = {"sticker_id": "media-1", "recipients": ["+919812345678", "+919812345679"]}
# No token, a wrong one, and a right one without its scheme: each is a 401.
BAD_AUTH = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]


@pytest.fixture
def client(database_url: str, redis_prefix: str) -> TestClient:
    settings = make_settings(
        database_url, redis_prefix, "http://127.0.0.1:9", api_tokens=f"{TOKEN},{READ_ONLY}:ro"
    )
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    client.database_url = database_url  # type: ignore[attr-defined]
    client.settings = settings  # type: ignore[attr-defined]
    return client


def count(database_url: str, model: type) -> int:
    with open_sessions(database_url) as sessions, sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0
