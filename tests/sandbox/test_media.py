"""The sandbox's media upload: ids for WebP files, Kaleyra's refusals, files served back,
and with known_media_only a WA400 for ids it never issued."""

from __future__ import annotations

import httpx
import pytest

from stickerq.producer.media import find_media_id
from stickerq.sandbox import SandboxServer
from tests.conftest import SENDER, TEST_API_KEY
from tests.webp import webp


def upload(
    sandbox: SandboxServer,
    data: bytes | None = None,
    *,
    key: str = TEST_API_KEY,
    sender: str = SENDER,
    kind: str | None = "image/webp",
) -> httpx.Response:
    fields = {"type": kind} if kind is not None else {}
    files = {"file": ("s.webp", webp() if data is None else data, "image/webp")}
    return httpx.post(
        f"{sandbox.url}/v2/{sandbox.config.sid}/whatsapp/{sender}/media",
        headers={"api-key": key},
        files=files,
        data=fields,
    )


def test_an_uploaded_webp_gets_a_media_id_and_is_served_back(sandbox: SandboxServer) -> None:
    data = webp(frames=2)
    answer = upload(sandbox, data)
    assert answer.status_code == 200
    media_id = find_media_id(answer.json())
    assert media_id is not None and media_id.isdigit()
    served = httpx.get(f"{sandbox.url}/_sandbox/media/{media_id}")
    assert (served.content, served.headers["content-type"]) == (data, "image/webp")
    assert httpx.get(f"{sandbox.url}/_sandbox/media/nope").status_code == 404


@pytest.mark.parametrize(
    ("options", "status", "code"),
    [
        ({"key": "wrong"}, 401, "RBC001"),
        ({"sender": "+919999999999"}, 401, "WA401"),
        ({"data": b"GIF89a not a webp"}, 400, "WA400"),
        ({"kind": None}, 400, "WA400"),
        ({"data": b""}, 400, "WA400"),
    ],
    ids=["wrong key", "foreign sender", "not webp", "no type", "empty file"],
)
def test_an_upload_kaleyra_would_refuse_is_refused_alike(
    sandbox: SandboxServer, options: dict, status: int, code: str
) -> None:
    answer = upload(sandbox, **options)
    assert (answer.status_code, answer.json()["code"]) == (status, code)


def test_known_media_only_answers_wa400_to_an_id_it_never_issued(sandbox: SandboxServer) -> None:
    media_id = find_media_id(upload(sandbox).json())
    sandbox.configure(known_media_only=True)
    url = f"{sandbox.url}/v2/{sandbox.config.sid}/whatsapp/{SENDER}/messages"

    def send(sticker_id: str) -> str:
        body = {
            "messaging_object": {
                "messaging_product": "whatsapp", "to": "+919812345678", "type": "sticker",
                "sticker": {"id": sticker_id},
            }
        }  # fmt: skip
        return httpx.post(url, headers={"api-key": TEST_API_KEY}, json=body).json()["code"]

    assert (send(str(media_id)), send("123456789")) == ("WA202", "WA400")


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ({"data": {"media_id": "m1"}}, "m1"),
        ({"data": {"id": 12345}}, "12345"),
        ({"id": "meta-style"}, "meta-style"),
        ({"data": [{"id": "first"}]}, "first"),
        ({"data": {}, "code": "WA200"}, None),
        ({"id": True}, None),
        ([], None),
    ],
)
def test_the_media_id_is_found_where_kaleyra_or_meta_put_it(body: object, found: str) -> None:
    assert find_media_id(body) == found
