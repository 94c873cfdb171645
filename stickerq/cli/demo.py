"""`stickerq demo`: a whole campaign against the sandbox on the embedded defaults.

Starts the sandbox (with a few WA500s) and a real worker with beat, enqueues 2,000
recipients plus a small campaign from a sender the account does not have (WA401: parked,
sender paused), shows live progress and prints the report; then stops what it started.
The HTTP API runs too, and the sandbox calls it back as Kaleyra would (sent, delivered, read;
duplicated and out of order), so the messages go on to read.

The main campaign is sent `--in-window`: as Kaleyra would, the sandbox first posts an
incoming-message callback for each of its recipients who wrote to the business number lately
(97 % of them), which fills the API's window ledger; the other 3 % end `outside_window` at
their claim, counted before anything is sent, so no sticker comes back failed with 131047.
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import sys
import time
from pathlib import Path

import redis
from pydantic import SecretStr
from rich.console import Console

from stickerq.api import create_app
from stickerq.api.callbacks import callback_url, incoming_url
from stickerq.api.served import ServedApi
from stickerq.cli.watch import progress_table, watch_campaign
from stickerq.db import open_sessions
from stickerq.errors import ServiceUnavailable
from stickerq.migrate import upgrade
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.progress import campaign_progress
from stickerq.producer.queue import check_broker
from stickerq.producer.request import CampaignRequest
from stickerq.producer.unknown_callbacks import list_unknown
from stickerq.redis_client import Purpose, make_redis
from stickerq.sandbox import SandboxConfig, SandboxServer
from stickerq.settings import Settings

DEMO_SENDER = "+919000000001"
UNREGISTERED_SENDER = "+919000000099"
DEMO_KEY = "demo-sandbox-key"
DEMO_STICKER = "798123456789012"
# The sandbox's status callbacks: a few duplicated or shuffled.
DEMO_CALLBACKS = {
    "callback_delay_ms": 200,
    "callback_duplicate_rate": 0.05,
    "callback_reorder_rate": 0.2,
}
IN_WINDOW_SHARE = 0.97  # of the recipients, who wrote to the business number lately
CALLBACKS_SETTLE_SECONDS = 60


def demo_recipients(count: int, seed: int = 7) -> str:
    """Valid, distinct Indian mobile numbers."""
    rng = random.Random(seed)
    numbers = rng.sample(range(10_000_000, 99_999_999), count)
    return ",".join(f"+9198{n:08d}" for n in numbers)


def run_demo(console: Console, *, recipients: int = 2000, keep: bool = False) -> None:
    base = Settings()
    database = Path("stickerq-demo.db").resolve()
    for leftover in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)
    sandbox = SandboxServer(
        SandboxConfig(
            sid=base.kaleyra_sid,
            api_key=DEMO_KEY,
            senders=frozenset({DEMO_SENDER}),
            latency_ms=40,
            wa500_rate=0.01,
            seed=11,
            in_window_share=IN_WINDOW_SHARE,
        )
    ).start()
    settings = Settings(
        # the sandbox's one account, whatever accounts the environment lists
        accounts_file=None,
        accounts=SecretStr(""),
        kaleyra_sid=sandbox.config.sid,
        database_url=f"sqlite:///{database}",
        redis_prefix=f"stickerq-demo:{os.getpid()}:",
        kaleyra_base_url=sandbox.url,
        kaleyra_api_key=SecretStr(DEMO_KEY),
        sender=DEMO_SENDER,
        rate_per_second=400.0,
        quick_attempts=2,
        quick_backoff_seconds=0.05,
        retry_delays_seconds=[1.0, 2.0],  # seconds instead of minutes, for the demo
        dispatch_interval_seconds=1.0,
        callback_secret=SecretStr(secrets.token_hex(16)),
    )
    worker = api = None
    try:
        check_broker(settings)
        upgrade(settings.database_url)
        api = ServedApi(create_app(settings)).start()
        sandbox.configure(
            callback_url=callback_url(settings, api.url),
            inbound_url=incoming_url(settings, api.url),
            **DEMO_CALLBACKS,
        )
        console.print(
            f"sandbox at {sandbox.url} (calling back the API at {api.url}); "
            f"database {database.name}; starting a worker"
        )
        worker = _start_worker(settings)
        audience = demo_recipients(recipients)
        wrote = sandbox.announce_inbound(DEMO_SENDER, audience.split(","))
        console.print(
            f"{wrote:,} of the {recipients:,} recipients wrote to {DEMO_SENDER} within the "
            "hour (incoming-message callbacks, now in the window ledger): the campaign is "
            "sent --in-window"
        )
        main = enqueue_campaign(
            settings,
            CampaignRequest(
                sticker_id=DEMO_STICKER,
                to=audience,
                name="demo: 2,000 stickers",
                ref="demo",
                ref1="marketing",
                ref2="dictionary",
                in_window=True,
            ),
        )
        stray = enqueue_campaign(
            settings,
            CampaignRequest(
                sticker_id=DEMO_STICKER,
                to=demo_recipients(20, seed=8),
                sender=UNREGISTERED_SENDER,
                name="demo: sender not on the account",
            ),
        )
        with open_sessions(settings.database_url) as sessions:
            for campaign_id in (main.campaign_id, stray.campaign_id):
                progress = watch_campaign(sessions, campaign_id, console, timeout_seconds=300)
                console.print(progress_table(progress))
        _wait_for_callbacks(console, sandbox, settings, main.campaign_id)
        stats = sandbox.stats()
        repeats = sum(1 for count in stats["accepted"].values() if count > 1)
        late = sandbox.windows()["outside_window"]
        console.print(
            f"sandbox: {stats['requests']:,} requests, {stats['accepted_total']:,} accepted, "
            f"{repeats} recipient(s) accepted twice, {late} sent outside the window (131047)"
        )
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        sandbox.stop()
        if api is not None:
            api.stop()
        _forget_redis_keys(settings)
        if not keep:
            for leftover in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
                leftover.unlink(missing_ok=True)


def _wait_for_callbacks(
    console: Console, sandbox: SandboxServer, settings: Settings, campaign_id: int
) -> None:
    """Until the sandbox has posted every status callback and the early ones (before their
    message_id was written) are applied; then the main campaign's counts."""
    deadline = time.monotonic() + CALLBACKS_SETTLE_SECONDS
    with (
        open_sessions(settings.database_url) as sessions,
        console.status("status callbacks coming in (sent, delivered, read)..."),
    ):
        while time.monotonic() < deadline:
            with sessions() as session:
                waiting = list_unknown(session, limit=1)
            if not waiting and not sandbox.callbacks()["pending"]:
                break
            time.sleep(0.5)
    posted = sandbox.callbacks()
    with open_sessions(settings.database_url) as sessions, sessions() as session:
        progress = campaign_progress(session, campaign_id)
    console.print(
        f"status callbacks: {posted['posted']:,} posted to the API (a few duplicated or out of "
        f"order), {posted['gave_up']} given up"
    )
    console.print(progress_table(progress))


def _start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.as_environment()}
    env["PYTHONWARNINGS"] = "ignore:::celery.platforms"  # the demo may run as root
    worker = subprocess.Popen(
        [sys.executable, "-m", "stickerq", "worker", "--beat", "--quiet", "--loglevel", "WARNING"],
        env=env,
    )
    time.sleep(0.5)
    if worker.poll() is not None:
        raise ServiceUnavailable("the demo worker exited at start; see its output above")
    return worker


def _forget_redis_keys(settings: Settings) -> None:
    try:
        with make_redis(settings.redis_target, purpose=Purpose.COMMAND) as client:
            keys = list(client.scan_iter(match=settings.redis_prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
    except redis.RedisError:
        pass
