"""`stickerq worker|beat|sandbox|demo`: the long-running processes, and the demo that runs
them all."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import typer

from stickerq.cli.common import console, fail, load_settings, setup_logging
from stickerq.errors import StickerqError


def register(app: typer.Typer) -> None:
    for command in (worker, beat, api, sandbox, demo):
        app.command()(command)


def sandbox(
    port: int = 8077,
    host: str = "127.0.0.1",
    sid: str = typer.Option("HXAP16XXXXXX97IN", help="account SID the sandbox accepts"),
    api_key: str = typer.Option("sandbox-key", envvar="STICKERQ_SANDBOX_API_KEY"),
    sender: list[str] = typer.Option(["+919000000001"], help="registered sender (repeatable)"),
    latency_ms: float = typer.Option(0.0, help="added to every send"),
    wa500_rate: float = typer.Option(0.0, help="fraction of sends answered WA500"),
    balance: int | None = typer.Option(None, help="answer E110 after this many accepted sends"),
    seed: int | None = typer.Option(None, help="seed of the random WA500s"),
) -> None:
    """Run the Kaleyra-compatible sandbox API (with fault injection)."""
    from stickerq.sandbox import SandboxConfig, run_sandbox

    config = SandboxConfig(
        sid=sid,
        api_key=api_key,
        senders=frozenset(sender),
        latency_ms=latency_ms,
        wa500_rate=wa500_rate,
        balance=balance,
        seed=seed,
    )
    console.print(f"sandbox on http://{host}:{port} (sid {sid}, senders {', '.join(sender)})")
    run_sandbox(config, host=host, port=port)


def worker(
    beat: bool = typer.Option(False, help="also run the beat scheduler (due retries)"),
    concurrency: int = typer.Option(2, help="worker processes"),
    pool: str = typer.Option("prefork", help="prefork, threads or solo"),
    loglevel: str = "INFO",
    quiet: bool = typer.Option(False, help="no start-up banner (none with JSON logs)"),
    events: bool = typer.Option(False, help="send task events (for Flower, `celery events`)"),
    metrics_port: int | None = typer.Option(
        None, help="serve Prometheus /metrics on this port (STICKERQ_WORKER_METRICS_PORT)"
    ),
) -> None:
    """Run a Celery worker that sends the queued batches (the same as `celery -A
    stickerq.worker.celery_app worker`, with the queues and settings filled in)."""
    settings = load_settings()
    if metrics_port is not None:
        settings = settings.model_copy(update={"worker_metrics_port": metrics_port})
    setup_logging(settings, loglevel)
    if settings.worker_metrics_port is not None:
        _use_multiprocess_metrics()
    from stickerq.worker.celery_app import start

    celery_app = start(settings)
    argv = ["worker", f"--concurrency={concurrency}", f"--pool={pool}", f"--loglevel={loglevel}"]
    argv += ["--without-gossip", "--without-mingle"] + (["--task-events"] if events else [])
    if beat:
        argv += ["--beat"]
    # JSON lines only: Celery's banner is text
    quiet = quiet or settings.log_format == "json"
    celery_app.start((["--quiet"] if quiet else []) + argv)


def beat(loglevel: str = "INFO") -> None:
    """Run the beat scheduler alone (dispatches due retries and scheduled campaigns)."""
    settings = load_settings()
    setup_logging(settings, loglevel)
    from stickerq.worker.celery_app import start

    quiet = ["--quiet"] if settings.log_format == "json" else []  # JSON lines: no banner
    start(settings).start([*quiet, "beat", f"--loglevel={loglevel}"])


def demo(
    recipients: int = typer.Option(2000, help="recipients of the main campaign"),
    keep: bool = typer.Option(False, help="keep the demo database file afterwards"),
) -> None:
    """Run a demo campaign against the sandbox: worker, progress bar, report."""
    from stickerq.cli.demo import run_demo

    try:
        run_demo(console, recipients=recipients, keep=keep)
    except StickerqError as exc:
        raise fail(exc) from None


def api(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
) -> None:
    """Serve the HTTP API (OpenAPI at /docs); tokens from STICKERQ_API_TOKENS."""
    import uvicorn

    from stickerq.api import create_app

    settings = load_settings()
    setup_logging(settings, "info")
    if not settings.api_tokens.get_secret_value().strip():
        console.print(
            "[yellow]warning:[/] STICKERQ_API_TOKENS is empty: every route but health answers 401"
        )
    console.print(f"HTTP API on http://{host}:{port} (OpenAPI at /docs)")
    # log_config=None: uvicorn's lines go through our handler (text or JSON, no secret)
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None)


def _use_multiprocess_metrics() -> None:
    """Every pool process of the worker counts into files of one folder, which the main
    process adds up on each scrape: PROMETHEUS_MULTIPROC_DIR, set before prometheus_client
    is imported. A folder given in the environment is emptied of an older run's files."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for old in Path(given).glob("*.db"):
            old.unlink()
    else:
        folder = tempfile.mkdtemp(prefix="stickerq-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        parent = os.getpid()

        def remove_folder() -> None:
            if os.getpid() == parent:  # not a pool process that ends before the worker
                shutil.rmtree(folder, ignore_errors=True)

        atexit.register(remove_folder)
