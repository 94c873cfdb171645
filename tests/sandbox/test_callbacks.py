"""The sandbox's status callbacks: Kaleyra's v2 shape, one per status, retried on 5xx, with
duplicates and shuffled order when asked."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from stickerq.producer.callback_payloads import parse_callback
from stickerq.sandbox import SandboxConfig, SandboxConfigError, SandboxServer
from stickerq.sandbox.callbacks import plan
from stickerq.sandbox.config import changed_config
from tests.conftest import wait_until
from tests.sandbox.test_sandbox import KEY, SENDER, SID, VALID_BODY


class Receiver:
    """A webhook on loopback that records each body and answers 500 to the first `fail`."""

    def __init__(self, fail: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail = fail
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if receiver.fail:
                    receiver.fail -= 1
                    self.send_response(500)
                else:
                    receiver.bodies.append(body)
                    self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver(fail=2)
    yield receiver
    receiver.server.shutdown()


def send(sandbox: SandboxServer) -> str:
    answer = httpx.post(
        f"{sandbox.url}/v2/{SID}/whatsapp/{SENDER}/messages",
        json=VALID_BODY,
        headers={"api-key": KEY},
    )
    assert answer.status_code == 202
    return answer.json()["data"]["message_id"]


def test_each_accepted_send_is_called_back_per_status_in_kaleyras_shape(
    receiver: Receiver,
) -> None:
    config = SandboxConfig(callback_url=receiver.url)
    with SandboxServer(config) as sandbox:
        message_id = send(sandbox)
        wait_until(lambda: len(receiver.bodies) == 3, timeout=10)
        counts = sandbox.callbacks()
    parsed = [parse_callback(body) for body in receiver.bodies]
    assert [p.status for p in parsed] == ["sent", "delivered", "read"]
    assert {p.message_id for p in parsed} == {message_id}
    assert (parsed[0].ref, parsed[0].ref1, parsed[0].ref2) == (
        "customer1",
        "marketing",
        "dictionary",
    )
    statuses = receiver.bodies[0]["meta_object"]["value"]["statuses"]
    assert statuses[0]["recipient_id"] == "919812345678"
    # the first two posts were answered 500 and posted again
    assert counts == {"posted": 3, "refused": 0, "retried": 2, "gave_up": 0, "pending": 0}


def test_failed_callbacks_carry_metas_131047(receiver: Receiver) -> None:
    receiver.fail = 0
    with SandboxServer(SandboxConfig(callback_url=receiver.url, callback_failed_rate=1)) as box:
        send(box)
        wait_until(lambda: len(receiver.bodies) == 2, timeout=10)
    failed = parse_callback(receiver.bodies[1])
    assert (failed.status, failed.error_code) == ("failed", "131047")


def test_duplicates_come_after_their_first_and_reordering_shuffles() -> None:
    rng = random.Random(3)
    duplicated = plan(SandboxConfig(callback_duplicate_rate=1), rng)
    assert sorted(duplicated) == sorted(["sent", "delivered", "read"] * 2)
    for status in ("sent", "delivered", "read"):
        first = duplicated.index(status)
        assert status in duplicated[first + 1 :]
    orders = {tuple(plan(SandboxConfig(callback_reorder_rate=1), rng)) for _ in range(40)}
    assert len(orders) > 1 and all(sorted(o) == ["delivered", "read", "sent"] for o in orders)
    assert plan(SandboxConfig(), rng) == ["sent", "delivered", "read"]


@pytest.mark.parametrize(
    "changes",
    [
        {"callback_url": "ftp://example.com"},
        {"callback_statuses": ["sent", "exploded"]},
        {"callback_statuses": "sent"},
        {"callback_duplicate_rate": 1.5},
        {"callback_delay_ms": -1},
    ],
)
def test_bad_callback_config_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(SandboxConfigError):
        changed_config(SandboxConfig(), changes)
