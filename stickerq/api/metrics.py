"""/metrics: Prometheus' text format, this process's counters and the gauges read from the
database and Redis at scrape time (stickerq/state_metrics.py).

Open when STICKERQ_METRICS_TOKEN is empty (scrapers rarely hold a token; no metric carries
a phone number or a secret), else `Authorization: Bearer <metrics token>`. The API's own
tokens are not asked for: a scraper need not hold a token that can send campaigns.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stickerq.api.problems import Problem
from stickerq.metrics import authorized, process_metrics
from stickerq.settings import Settings
from stickerq.state_metrics import StateCollector

router = APIRouter(tags=["metrics"])


def install(app: FastAPI, settings: Settings) -> None:
    app.state.metrics = process_metrics(StateCollector(settings))
    app.include_router(router)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
def metrics(request: Request) -> Response:
    """Prometheus metrics (open unless STICKERQ_METRICS_TOKEN is set)."""
    settings: Settings = request.app.state.settings
    if not authorized(request.headers.get("authorization"), settings.metrics_token):
        raise Problem(401, "unauthorized", "a valid metrics bearer token is needed")
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
