"""The naive baseline of bench/throughput.py: the design most users would write first.

One Celery task per recipient; the task POSTs with a sync `httpx.Client` (shared by the
worker's threads, keep-alive pooled) and commits one row per message to a table of its own.
Run as a real worker:

    NAIVE_BROKER_URL=redis://... NAIVE_REDIS_PREFIX=... NAIVE_DATABASE_URL=postgresql://... \
    NAIVE_SEND_URL=http://127.0.0.1:PORT/v2/SID/whatsapp/SENDER/messages NAIVE_API_KEY=... \
    PYTHONPATH=bench celery -A naive worker --pool threads --concurrency 50 -Q naive

No claim, no limiter, no retry, no bulk write: that is the point of a baseline. It is not
sabotaged either: one pooled HTTP client, and a database pool as large as the thread pool.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import httpx
from celery import Celery
from sqlalchemy import Engine, create_engine, text

QUEUE = "naive"
TABLE_DDL = """
CREATE TABLE IF NOT EXISTS naive_messages (
    id bigserial PRIMARY KEY,
    label text NOT NULL,
    recipient text NOT NULL,
    http_status integer,
    code text,
    message_id text,
    done_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""

app = Celery("naive")


def configure(broker_url: str, prefix: str) -> Celery:
    app.conf.update(
        broker_url=broker_url,
        broker_transport_options={"global_keyprefix": prefix},
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_ignore_result=True,
        result_backend=None,
        worker_hijack_root_logger=False,
    )
    return app


if "NAIVE_BROKER_URL" in os.environ:  # the worker process: configured from its environment
    configure(os.environ["NAIVE_BROKER_URL"], os.environ["NAIVE_REDIS_PREFIX"])

_lock = threading.Lock()
_client: httpx.Client | None = None
_engine: Engine | None = None


def _resources() -> tuple[httpx.Client, Engine]:
    global _client, _engine
    with _lock:
        if _client is None or _engine is None:
            threads = int(os.environ.get("NAIVE_THREADS", "50"))
            _client = httpx.Client(
                headers={"api-key": os.environ["NAIVE_API_KEY"], "cache-control": "no-cache"},
                timeout=30.0,
                limits=httpx.Limits(max_connections=threads, max_keepalive_connections=threads),
                trust_env=False,
            )
            url = os.environ["NAIVE_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://")
            _engine = create_engine(url, pool_size=threads, max_overflow=10)
        return _client, _engine


def body(recipient: str, sticker_id: str) -> dict[str, Any]:
    return {
        "messaging_object": {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": recipient,
            "type": "sticker",
            "sticker": {"id": sticker_id},
        },
        "extra_info": {"wa_source": "api"},
    }


@app.task(name="naive.send_sticker")
def send_sticker(label: str, recipient: str, sticker_id: str) -> None:
    client, engine = _resources()
    response = client.post(os.environ["NAIVE_SEND_URL"], json=body(recipient, sticker_id))
    try:
        reply = response.json()
    except ValueError:
        reply = {}
    data = reply.get("data") if isinstance(reply, dict) else None
    with engine.begin() as connection:  # one transaction, one commit, per message
        connection.execute(
            text(
                "INSERT INTO naive_messages (label, recipient, http_status, code, message_id) "
                "VALUES (:label, :recipient, :http_status, :code, :message_id)"
            ),
            {
                "label": label,
                "recipient": recipient,
                "http_status": response.status_code,
                "code": reply.get("code") if isinstance(reply, dict) else None,
                "message_id": data.get("message_id") if isinstance(data, dict) else None,
            },
        )
