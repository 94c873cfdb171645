"""The worker's /metrics: one HTTP endpoint in the worker's main process that adds up what
every pool process counted (prometheus_client's multiprocess mode, stickerq/metrics.py).

Started once the pool is up (Celery's worker_ready, sent in the main process only, never by
beat), on STICKERQ_WORKER_METRICS_PORT; STICKERQ_METRICS_TOKEN, when set, is asked for.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery import signals
from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from stickerq.metrics import MULTIPROC_DIR, authorized, multiprocess_mode, process_metrics
from stickerq.settings import Settings

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # a scrape every 15 s is no news
        pass


def metrics_app(settings: Settings) -> WsgiApp:
    """/metrics of every process of this worker, behind the metrics token if one is set."""
    exposition: WsgiApp = make_wsgi_app(process_metrics())

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not authorized(environ.get("HTTP_AUTHORIZATION"), settings.metrics_token):
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            return [b"a valid bearer token (STICKERQ_METRICS_TOKEN) is needed\n"]
        return exposition(environ, start_response)

    return app


def serve(settings: Settings) -> WSGIServer:
    """Serve /metrics from a daemon thread of this process; the server, to stop it."""
    port = settings.worker_metrics_port
    assert port is not None
    server = make_server(
        settings.worker_metrics_host,
        port,
        metrics_app(settings),
        server_class=ThreadingWSGIServer,
        handler_class=_Quiet,
    )
    threading.Thread(target=server.serve_forever, daemon=True, name="stickerq-metrics").start()
    return server


def serve_when_ready(settings: Settings) -> None:
    """Serve the worker's /metrics once its pool is up, if a port is configured (the last
    settings given win: `stickerq worker` configures the app twice)."""
    signals.worker_ready.disconnect(dispatch_uid=__name__)
    if settings.worker_metrics_port is None:
        return

    def start(**_: Any) -> None:
        # Checked here, in a worker only: beat, sharing the worker's environment, never serves.
        if not multiprocess_mode():
            log.error(
                "worker metrics not served: %s must name an empty folder before the worker "
                "starts (`stickerq worker --metrics-port` sets it; with `celery -A "
                "stickerq.worker.celery_app worker`, export it yourself)",
                MULTIPROC_DIR,
            )
            return
        try:
            server = serve(settings)
        except OSError as exc:
            log.error(
                "worker metrics not served on %s:%s: %s",
                settings.worker_metrics_host,
                settings.worker_metrics_port,
                exc,
            )
            return
        host, port = server.server_address[:2]
        log.info("worker metrics on http://%s:%s/metrics", host, port)

    signals.worker_ready.connect(start, weak=False, dispatch_uid=__name__)
