"""The signature of a webhook POST, checked by the README's own receiver (run here as it is
printed there): a good POST is taken once, a tampered body or an old `t` is refused."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from stickerq.webhook_signing import SIGNATURE_HEADER, new_secret, sign, verify

README = Path(__file__).parent.parent / "README.md"
SECRET = new_secret()


def readme_receiver() -> dict[str, Any]:
    """The README's receiver, executed as a module that is not __main__."""
    text = README.read_text()
    section = text[text.index("## Webhooks") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the README's Webhooks section has no python receiver"
    namespace: dict[str, Any] = {"__name__": "readme_receiver"}
    exec(code.group(1), namespace)  # our own README's example
    return namespace


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    namespace = readme_receiver()
    handled: list[dict[str, Any]] = []
    namespace["SECRET"] = SECRET.encode()
    namespace["handle"] = handled.append
    namespace["Receiver"].log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), namespace["Receiver"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", handled
    server.shutdown()
    server.server_close()


def post(url: str, body: bytes, signature: str) -> int:
    headers = {SIGNATURE_HEADER: signature, "Content-Type": "application/json"}
    return httpx.post(url, content=body, headers=headers, trust_env=False).status_code


EVENT = b'{"id":"e-1","type":"pause.started","created_at":"x","data":{}}'
BATCH = (
    b'[{"id":"m-1","type":"message.status","data":{}},'
    b'{"id":"m-2","type":"message.status","data":{}}]'
)


def test_the_readme_receiver_takes_a_signed_event_once(
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, handled = receiver
    now = int(time.time())
    assert post(url, EVENT, sign(SECRET, EVENT, now)) == 200
    assert post(url, EVENT, sign(SECRET, EVENT, now)) == 200  # a copy: taken, not handled
    assert post(url, BATCH, sign(SECRET, BATCH, now)) == 200
    assert [event["id"] for event in handled] == ["e-1", "m-1", "m-2"]


def test_the_readme_receiver_refuses_a_tampered_body_a_wrong_secret_and_an_old_t(
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, handled = receiver
    now = int(time.time())
    tampered = EVENT.replace(b"pause.started", b"pause.lifted")
    assert post(url, tampered, sign(SECRET, EVENT, now)) == 401
    assert post(url, EVENT, sign("whsec_another", EVENT, now)) == 401
    assert post(url, EVENT, sign(SECRET, EVENT, now - 301)) == 401
    assert handled == []


def test_verify_is_the_same_check() -> None:
    now = int(time.time())
    header = sign(SECRET, EVENT, now)
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
    assert verify(SECRET, EVENT, header, now + 299)
    assert not verify(SECRET, EVENT, header, now + 301)
    assert not verify(SECRET, EVENT + b" ", header, now)
    assert not verify(SECRET, EVENT, "v1=abc", now)
    assert new_secret() != new_secret() and len(new_secret()) > 40
