"""The sandbox's media upload (`POST /v2/{sid}/whatsapp/{phone_number}/media`) and the
uploaded files served back over http (`GET /_sandbox/media/{media_id}`), so that a test or a
demo can send a sticker by media id, or link one, without leaving the machine.

Uploaded files are kept in memory by id (`SandboxState.media`). With `known_media_only`, a
send whose sticker id was not uploaded here is answered WA400, as Kaleyra answers an id it
does not know.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import BodyPartReader, web

from stickerq.sandbox.config import key_matches
from stickerq.sandbox.replies import REPLIES, Reply, dumps

MEDIA_PATH = "/v2/{sid}/whatsapp/{phone_number}/media"
SERVED_PATH = "/_sandbox/media/{media_id}"
WEBP_TYPE = "image/webp"
MAX_MEDIA_BYTES = 1 << 20  # far above a sticker's 500 KB; aiohttp's own cap is the same


def new_media_id() -> str:
    """Digits, like Meta's media ids."""
    return str(10**14 + secrets.randbelow(9 * 10**14))


def _refused(field: str, why: str) -> web.Response:
    body = {"code": "WA400", "message": "Refer to correct payload format", "data": {}}
    return web.Response(
        status=400, body=dumps({**body, "error": {field: why}}), content_type="application/json"
    )


def _reply(reply: Reply) -> web.Response:
    return web.Response(status=reply.status, body=reply.body(), content_type="application/json")


async def _form(request: web.Request) -> dict[str, Any] | None:
    """The multipart fields (`file` as bytes, the others as text); None if not multipart."""
    if request.content_type != "multipart/form-data":
        return None
    fields: dict[str, Any] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        data = await part.read()
        fields[part.name] = bytes(data) if part.filename else data.decode("utf-8", "replace")
    return fields


async def upload_media(request: web.Request, state: Any) -> web.Response:
    """Kaleyra's media upload: key and SID, sender, then the `file` and `type` fields."""
    config = state.config
    if not key_matches(config, request.match_info["sid"], request.headers.get("api-key")):
        return _reply(REPLIES["RBC001"])
    if request.match_info["phone_number"] not in config.senders:
        return _reply(REPLIES["WA401"])
    fields = await _form(request)
    if fields is None:
        return _refused("payload", "send multipart/form-data with fields file and type")
    file, kind = fields.get("file"), fields.get("type")
    if not isinstance(file, bytes) or not file:
        return _refused("file", "the file field is missing or empty")
    if not isinstance(kind, str) or not kind.startswith("image/"):
        return _refused("type", "give the file's MIME type, e.g. image/webp")
    if len(file) > MAX_MEDIA_BYTES:
        return _refused("file", "the file is too large")
    if kind == WEBP_TYPE and (file[:4] != b"RIFF" or file[8:12] != b"WEBP"):
        return _refused("file", "the file is not a WebP image")
    media_id = new_media_id()
    state.media[media_id] = (kind, file)
    body = {"code": "WA200", "message": "Media uploaded", "data": {"media_id": media_id}}
    return web.Response(
        status=200, body=dumps({**body, "error": {}}), content_type="application/json"
    )


def serve_media(request: web.Request, state: Any) -> web.Response:
    """An uploaded file, with its MIME type, over the sandbox's own http."""
    found = state.media.get(request.match_info["media_id"])
    if found is None:
        return web.Response(status=404, text="no such media id")
    kind, file = found
    return web.Response(status=200, body=file, content_type=kind)


def unknown_media(body: Any, state: Any) -> bool:
    """With known_media_only: the send names a media id that was not uploaded here."""
    if not state.config.known_media_only or not isinstance(body, dict):
        return False
    message = body.get("messaging_object")
    sticker = message.get("sticker") if isinstance(message, dict) else None
    media_id = sticker.get("id") if isinstance(sticker, dict) else None
    return isinstance(media_id, str) and media_id not in state.media
