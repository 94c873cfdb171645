"""The sandbox with several accounts: a request passes only with the key of the SID in its
path (RBC001 otherwise, as Kaleyra answers), for sends and uploads alike."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from stickerq.sandbox import SandboxServer
from stickerq.sandbox.config import SandboxConfigError, changed_config, public_view
from tests.conftest import SENDER, STICKER_ID
from tests.two_accounts import KEY_A, KEY_B, SID_A, SID_B, two_account_sandbox_config
from tests.webp import webp

BODY = {
    "messaging_object": {
        "messaging_product": "whatsapp",
        "to": "+919812345678",
        "type": "sticker",
        "sticker": {"id": STICKER_ID},
    }
}


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(two_account_sandbox_config()) as server:
        yield server


def send(sandbox: SandboxServer, sid: str, key: str) -> str:
    url = f"{sandbox.url}/v2/{sid}/whatsapp/{SENDER}/messages"
    code: str = httpx.post(url, json=BODY, headers={"api-key": key}).json()["code"]
    return code


def upload(sandbox: SandboxServer, sid: str, key: str) -> int:
    return httpx.post(
        f"{sandbox.url}/v2/{sid}/whatsapp/{SENDER}/media",
        headers={"api-key": key},
        files={"file": ("s.webp", webp(), "image/webp")},
        data={"type": "image/webp"},
    ).status_code


def test_each_sid_takes_its_own_key_only(sandbox: SandboxServer) -> None:
    assert (send(sandbox, SID_A, KEY_A), send(sandbox, SID_B, KEY_B)) == ("WA202", "WA202")
    assert (send(sandbox, SID_A, KEY_B), send(sandbox, SID_B, KEY_A)) == ("RBC001", "RBC001")
    assert send(sandbox, "HXNOSUCHSID", KEY_A) == "RBC001"
    assert (upload(sandbox, SID_B, KEY_B), upload(sandbox, SID_B, KEY_A)) == (200, 401)
    valid = [r["headers"]["api_key_valid"] for r in sandbox.requests()]
    assert valid == [True, True, False, False, False]


def test_the_accounts_keys_are_never_shown_and_are_checked() -> None:
    config = two_account_sandbox_config()
    assert KEY_B not in repr(config) and KEY_B not in str(public_view(config))
    assert public_view(config)["accounts"] == {SID_B: "***"}
    with pytest.raises(SandboxConfigError, match="non-empty SIDs to non-empty api-keys"):
        changed_config(config, {"accounts": {SID_B: ""}})
