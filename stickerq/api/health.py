"""/healthz (the process answers) and /readyz (database, Redis, schema at head)."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from stickerq import migrate
from stickerq.api.problems import problem_response
from stickerq.redis_client import Purpose, make_redis
from stickerq.settings import Settings

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    checks = {"database": "ok", "redis": "ok", "migrations": "ok"}
    try:
        revision = migrate.current(settings.database_url)
        if revision != migrate.head():
            checks["migrations"] = f"at {revision or 'none'}, head is {migrate.head()}"
    except SQLAlchemyError:
        checks["database"] = "unreachable"
        checks["migrations"] = "unknown"
    try:
        with make_redis(settings.redis_target, purpose=Purpose.COMMAND) as client:
            client.ping()
    except redis.RedisError:
        checks["redis"] = "unreachable"
    failed = [name for name, state in checks.items() if state != "ok"]
    if failed:
        return problem_response(
            503, "not_ready", "not ready", f"failing: {', '.join(failed)}", checks=checks
        )
    return JSONResponse({"status": "ready", "checks": checks})
