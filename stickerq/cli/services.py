"""`stickerq worker|beat|sandbox|demo`: the long-running processes, and the demo that runs
them all."""

from __future__ import annotations

import atexit
import gc
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from stickerq.cli.common import console, fail, load_settings, setup_logging
from stickerq.errors import StickerqError

if TYPE_CHECKING:
    from stickerq.settings import Settings


def register(app: typer.Typer) -> None:
    for command in (worker, beat, api, sandbox, demo):
        app.command()(command)


def sandbox(
    port: int = typer.Option(8077, min=0, max=65535, help="port to listen on (0: any free one)"),
    host: str = "127.0.0.1",
    sid: str = typer.Option("HXAP16XXXXXX97IN", help="account SID the sandbox accepts"),
    api_key: str = typer.Option("sandbox-key", envvar="STICKERQ_SANDBOX_API_KEY"),
    accounts: str | None = typer.Option(
        None,
        envvar="STICKERQ_SANDBOX_ACCOUNTS",
        help='more accounts, JSON {"SID": "api-key", ...}: each request needs the key of the '
        "SID in its path",
    ),
    sender: list[str] = typer.Option(["+919000000001"], help="registered sender (repeatable)"),
    latency_ms: float = typer.Option(0.0, help="added to every send"),
    wa500_rate: float = typer.Option(0.0, help="fraction of sends answered WA500"),
    balance: int | None = typer.Option(None, help="answer E110 after this many accepted sends"),
    seed: int | None = typer.Option(
        None, help="seed of the random WA500s and callbacks, and of who is in the window"
    ),
    callback_url: str | None = typer.Option(
        None, help="POST each accepted send's status callbacks here (the URL `stickerq api` prints)"
    ),
    callback_status: list[str] = typer.Option(
        ["sent", "delivered", "read"], help="statuses called back, in order (repeatable)"
    ),
    callback_delay_ms: float = typer.Option(0.0, help="waited before each callback"),
    callback_duplicate_rate: float = typer.Option(0.0, help="fraction of callbacks posted twice"),
    callback_reorder_rate: float = typer.Option(
        0.0, help="fraction of messages whose callbacks come in a shuffled order"
    ),
    callback_failed_rate: float = typer.Option(
        0.0, help="fraction of in-window messages called back failed (131047) at random"
    ),
    in_window_share: float = typer.Option(
        0.97,
        help="fraction of recipients inside their 24-hour window (picked by a hash of seed, "
        "sender and number); sends to the others are called back failed (131047)",
    ),
    inbound_url: str | None = typer.Option(
        None,
        help="POST customer messages (POST /_inbound, /_sandbox/announce) here as Kaleyra's "
        "incoming-message callbacks (the API's .../callbacks/kaleyra/<secret>/incoming)",
    ),
    known_media_only: bool = typer.Option(
        False, help="answer WA400 to a sticker id not uploaded here (`stickerq media upload`)"
    ),
) -> None:
    """Run the Kaleyra-compatible sandbox API (with fault injection)."""
    from stickerq.sandbox import SandboxConfig, SandboxConfigError, run_sandbox
    from stickerq.sandbox.config import changed_config

    try:
        more = json.loads(accounts) if accounts else {}
    except json.JSONDecodeError as exc:
        raise fail(SandboxConfigError(f"--accounts is not JSON: {exc}")) from None
    try:
        config = changed_config(
            SandboxConfig(),
            {
                "sid": sid,
                "api_key": api_key,
                "accounts": more,
                "senders": sender,
                "latency_ms": latency_ms,
                "wa500_rate": wa500_rate,
                "balance": balance,
                "seed": seed,
                "callback_url": callback_url,
                "callback_statuses": callback_status,
                "callback_delay_ms": callback_delay_ms,
                "callback_duplicate_rate": callback_duplicate_rate,
                "callback_reorder_rate": callback_reorder_rate,
                "callback_failed_rate": callback_failed_rate,
                "in_window_share": in_window_share,
                "inbound_url": inbound_url,
                "known_media_only": known_media_only,
            },
        )
    except SandboxConfigError as exc:
        raise fail(exc) from None
    sids = ", ".join([sid, *config.accounts])
    console.print(f"sandbox on http://{host}:{port} (sid {sids}, senders {', '.join(sender)})")
    if callback_url:
        console.print("status callbacks go to the callback URL given (--callback-url)")
    console.print(
        f"{in_window_share:.0%} of recipients are inside their 24-hour window; "
        "POST /_inbound opens one"
        + (", and posts it to the incoming URL given (--inbound-url)" if inbound_url else "")
    )
    run_sandbox(config, host=host, port=port)


def worker(
    beat: bool = typer.Option(False, help="also run the beat scheduler (due retries)"),
    concurrency: int = typer.Option(2, min=1, help="worker processes"),
    pool: str = typer.Option("prefork", help="prefork, threads or solo"),
    loglevel: str = "INFO",
    quiet: bool = typer.Option(False, help="no start-up banner (none with JSON logs)"),
    events: bool = typer.Option(False, help="send task events (for Flower, `celery events`)"),
    metrics_port: int | None = typer.Option(
        None,
        min=0,
        max=65535,
        help="serve Prometheus /metrics on this port (STICKERQ_WORKER_METRICS_PORT)",
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
    from stickerq.worker.runtime import check_keys

    try:
        accounts = check_keys(settings)  # at start, not at the first batch
    except StickerqError as exc:
        raise fail(exc) from None
    logging.getLogger("stickerq.worker").info(
        "sending on Kaleyra account(s) %s", ", ".join(account.sid for account in accounts)
    )
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
    recipients: int = typer.Option(2000, min=1, help="recipients of the main campaign"),
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
    port: int = typer.Option(8000, min=0, max=65535, help="port to listen on"),
) -> None:
    """Serve the HTTP API (OpenAPI at /docs); tokens from STICKERQ_API_TOKENS."""
    import uvicorn

    from stickerq.api import create_app

    settings = load_settings()
    setup_logging(settings, "info")
    try:
        settings.all_accounts()  # a broken list of accounts stops the server at start
        app = create_app(settings)  # so does a token too short to be safe
    except StickerqError as exc:
        raise fail(exc) from None
    if not settings.api_tokens.get_secret_value().strip():
        console.print(
            "[yellow]warning:[/] STICKERQ_API_TOKENS is empty: every route but health answers 401"
        )
    console.print(f"HTTP API on http://{host}:{port} (dashboard at /, OpenAPI at /docs)")
    _print_callback_url(settings, f"http://{host}:{port}")
    # What the imports built stays out of every later full collection: scanning it stalled
    # the callback receiver for ~100 ms at a time (bench/callbacks.py; the sandbox does the same).
    gc.collect()
    gc.freeze()
    # The callback writer's thread and the event loop share the GIL: hand it over every 1 ms
    # rather than 5, so that an answer does not wait behind a batch being written.
    sys.setswitchinterval(0.001)
    # log_config=None: uvicorn's lines go through our handler (text or JSON, no secret)
    uvicorn.run(app, host=host, port=port, log_config=None)


def _print_callback_url(settings: Settings, base_url: str) -> None:
    """The URL to give Kaleyra, on the terminal only: printed, never logged (a service's
    captured output is a log, so there it is masked; `stickerq callbacks url` shows it)."""
    from stickerq.api.callbacks import callback_url, masked_callback_url, secret_problem

    problem = secret_problem(settings)
    if problem is not None:
        console.print(
            f"[yellow]warning:[/] Kaleyra's status callbacks are refused (503): {problem}"
        )
        return
    shown = (
        callback_url(settings, base_url) if console.is_terminal else masked_callback_url(base_url)
    )
    console.print(
        f"Kaleyra callback URL: {shown} (behind your public https address; "
        "`stickerq callbacks url` prints it)"
    )


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
