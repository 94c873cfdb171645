"""create_app: the FastAPI application, its routes, auth and problem documents."""

from __future__ import annotations

from fastapi import FastAPI

from stickerq.api import (
    accounts,
    audit,
    callbacks,
    campaigns,
    dashboard,
    docs,
    guard,
    headers,
    health,
    keys,
    messages,
    metrics,
    operations,
    problems,
    recipients,
    reports,
    senders,
    suppressions,
    webhooks,
    windows,
)
from stickerq.api.auth import parse_tokens
from stickerq.api.dashboard.sessions import Sessions
from stickerq.api.key_cache import KeyCache
from stickerq.api.own_process import OwnProcess
from stickerq.api.problems import problem_responses
from stickerq.redis_client import Purpose, make_redis
from stickerq.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """The API on these settings; OpenAPI at /openapi.json, Swagger UI at /docs."""
    app = FastAPI(
        title="stickerq",
        summary="bulk Kaleyra WhatsApp sticker campaigns",
        responses=problem_responses(413, 429),  # the guard's answers, on any route
        docs_url=None,  # docs.install serves it, from no CDN
        redoc_url=None,
        # stickerq exports Prometheus metrics of its own (/metrics). FastAPI's OpenTelemetry,
        # on by default, looks up three global providers in os.environ on every request:
        # 3.3 us a request (0.1 off), about 1 % of a callback's API CPU.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.tokens = parse_tokens(settings.api_tokens.get_secret_value())
    app.state.own_process = OwnProcess(settings)  # large campaigns are stored beside the API
    app.state.keys = KeyCache(settings)  # `stickerq keys`' keys, beside the tokens above
    store = make_redis(settings.redis_target, purpose=Purpose.SESSIONS)
    sessions = Sessions(
        app.state.tokens,
        app.state.keys,
        store,
        settings.redis_prefix,
        settings.session_idle_minutes * 60,
    )
    problems.install(app)
    docs.install(app)
    app.include_router(health.router)
    app.include_router(campaigns.router)
    app.include_router(messages.router)
    app.include_router(reports.router)
    app.include_router(operations.router)
    app.include_router(suppressions.router)
    app.include_router(recipients.router)
    app.include_router(senders.router)
    app.include_router(accounts.router)
    app.include_router(windows.router)
    app.include_router(audit.router)
    app.include_router(keys.router)
    app.include_router(webhooks.router)
    metrics.install(app, settings)
    dashboard.install(app, sessions)
    guard.install(app, settings, sessions)  # before any body is read: who asks, and how much
    callbacks.install(app)  # Kaleyra's status callbacks: its own secret, no bearer token
    app.add_middleware(headers.AnswerHeaders)  # added last: it wraps every other middleware
    return app
