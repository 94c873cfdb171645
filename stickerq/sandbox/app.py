"""The sandbox's aiohttp application: Kaleyra's sticker send endpoint, customer messages
(`POST /_inbound`, sandbox/inbound.py) and the control endpoints.

Built to keep up with a 1,000 msgs/s benchmark: latency is a sleep, no request is logged
through `logging`, and nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from typing import Any

from aiohttp import web

from stickerq.sandbox import inbound, media
from stickerq.sandbox.callbacks import CallbackPoster
from stickerq.sandbox.config import SandboxConfig, SandboxConfigError, key_matches, public_view
from stickerq.sandbox.payload import StickerSend, parse_sticker_send
from stickerq.sandbox.replies import (
    DROP,
    HTML_502,
    HTML_502_BODY,
    REPLIES,
    TIMEOUT,
    Reply,
    dumps,
    new_message_id,
)
from stickerq.sandbox.state import SandboxState, ScriptError

STATE = web.AppKey("state", SandboxState)
CALLBACKS = web.AppKey("callbacks", CallbackPoster)
INBOUND = web.AppKey("inbound", CallbackPoster)  # incoming-message callbacks, counted apart
SEND_PATH = "/v2/{sid}/whatsapp/{phone_number}/messages"
API_KEY_HEADER = "api-key"
BACKLOG = 1024  # a benchmark opens hundreds of connections at once


def _json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=dumps(value), content_type="application/json")


def _reply_response(reply: Reply, message_id: str | None) -> web.Response:
    return web.Response(
        status=reply.status, body=reply.body(message_id), content_type="application/json"
    )


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:  # includes UnicodeDecodeError
        return None


def _is_json_request(request: web.Request) -> bool:
    """`application/json`, with at most a utf-8 charset."""
    charset = request.charset
    return request.content_type == "application/json" and (
        charset is None or charset.lower() in ("utf-8", "utf8")
    )


def _masked_headers(request: web.Request, api_key_valid: bool) -> dict[str, Any]:
    """Request headers (names lower-cased) with the api-key value replaced by `***`."""
    headers: dict[str, Any] = {
        name.lower(): "***" if name.lower() == API_KEY_HEADER else value
        for name, value in request.headers.items()
    }
    headers["api_key_valid"] = api_key_valid
    return headers


def _raw_recipient(body: Any) -> Any:
    """The `to` of a body, whatever it holds, for the log of a refused request."""
    message = body.get("messaging_object") if isinstance(body, dict) else None
    return message.get("to") if isinstance(message, dict) else None


def _decide(
    request: web.Request, state: SandboxState, body: Any, api_key_valid: bool
) -> tuple[str, StickerSend | None]:
    """The outcome of a send, checked in Kaleyra's order: key and SID, sender, payload, balance."""
    config = state.config
    if not api_key_valid:
        return "RBC001", None
    if request.match_info["phone_number"] not in config.senders:
        return "WA401", None
    send = parse_sticker_send(body) if _is_json_request(request) else None
    if send is None or media.unknown_media(body, state):
        return "WA400", None
    return state.choose(send.recipient), send


async def _written(request: web.Request, response: web.StreamResponse) -> bool:
    """Send the response now; False when the client has already gone."""
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        return False
    return True


async def send_message(request: web.Request) -> web.StreamResponse:
    """`POST /v2/{sid}/whatsapp/{phone_number}/messages`: answer as Kaleyra would."""
    arrived = time.time()
    state = request.app[STATE]
    body = _parse_json(await request.read())
    api_key_valid = key_matches(
        state.config, request.match_info["sid"], request.headers.get(API_KEY_HEADER)
    )
    entry = state.log_request(
        {
            "at": arrived,
            "sender": request.match_info["phone_number"],
            "sid": request.match_info["sid"],
            "recipient": _raw_recipient(body),
            "body": body,
            "headers": _masked_headers(request, api_key_valid),
        }
    )
    if state.config.latency_ms > 0:
        await asyncio.sleep(state.config.latency_ms / 1000)
    outcome, send = _decide(request, state, body, api_key_valid)
    if send is not None:
        entry["recipient"] = send.recipient

    if outcome == DROP:
        state.record_answer(entry, outcome=DROP, http_status=None, code=None)
        if request.transport is not None:
            request.transport.close()
        return web.Response()  # aiohttp fails quietly to write it to the closed connection
    if outcome == HTML_502:
        state.record_answer(entry, outcome=HTML_502, http_status=502, code=None)
        return web.Response(status=502, text=HTML_502_BODY, content_type="text/html")
    if outcome == TIMEOUT:
        return await _answer_after_stall(request, state, entry, send)

    reply = REPLIES[outcome]
    message_id = new_message_id() if reply.carries_message_id else None
    state.record_answer(
        entry,
        outcome=outcome,
        http_status=reply.status,
        code=reply.code,
        message_id=message_id,
        send=send,
    )
    _call_back(request, message_id, send)
    return _reply_response(reply, message_id)


def _call_back(request: web.Request, message_id: str | None, send: StickerSend | None) -> None:
    """An accepted send gets its status callbacks (when a callback_url is configured): failed
    with 131047 when it is outside the recipient's window, which is counted either way."""
    if message_id is None or send is None:
        return
    state = request.app[STATE]
    sender = request.match_info["phone_number"]
    in_window = state.windows.reaches(state.config, sender, send.recipient, time.time())
    request.app[CALLBACKS].accepted(state.config, message_id, send, in_window)


async def _answer_after_stall(
    request: web.Request, state: SandboxState, entry: dict[str, Any], send: StickerSend | None
) -> web.StreamResponse:
    """TIMEOUT: stall, then answer WA202; the send is accepted only if the answer got out."""
    await asyncio.sleep(state.config.timeout_seconds)
    reply = REPLIES["WA202"]
    message_id = new_message_id()
    response = _reply_response(reply, message_id)
    if await _written(request, response):
        state.record_answer(
            entry,
            outcome=TIMEOUT,
            http_status=reply.status,
            code=reply.code,
            message_id=message_id,
            send=send,
        )
        _call_back(request, message_id, send)
    else:
        state.record_answer(entry, outcome=TIMEOUT, http_status=None, code=None)
    return response


async def _json_body(request: web.Request) -> Any:
    return _parse_json(await request.read())


async def add_script(request: web.Request) -> web.Response:
    """`POST /_sandbox/script`: append outcomes to recipients' queues."""
    try:
        queued = request.app[STATE].add_script(await _json_body(request))
    except ScriptError as exc:
        return _json_response({"error": str(exc)}, status=400)
    return _json_response({"ok": True, "queued": queued})


async def change_config(request: web.Request) -> web.Response:
    """`POST /_sandbox/config`: change config fields at run time."""
    changes = await _json_body(request)
    if not isinstance(changes, dict):
        return _json_response({"error": "config changes are a JSON object"}, status=400)
    try:
        config = request.app[STATE].reconfigure(changes)
    except SandboxConfigError as exc:
        return _json_response({"error": str(exc)}, status=400)
    return _json_response(public_view(config))


async def show_config(request: web.Request) -> web.Response:
    """`GET /_sandbox/config`: the config, api-key masked."""
    return _json_response(public_view(request.app[STATE].config))


async def show_stats(request: web.Request) -> web.Response:
    """`GET /_sandbox/stats`."""
    return _json_response(request.app[STATE].stats())


async def show_accepted(request: web.Request) -> web.Response:
    """`GET /_sandbox/accepted`: every accepted send, in order."""
    return _json_response(request.app[STATE].accepted)


async def show_requests(request: web.Request) -> web.Response:
    """`GET /_sandbox/requests`: every send request, in order of arrival."""
    return _json_response(request.app[STATE].request_log())


async def show_callbacks(request: web.Request) -> web.Response:
    """`GET /_sandbox/callbacks`: status callbacks posted, refused, retried, given up, pending."""
    return _json_response(request.app[CALLBACKS].stats())


async def reset(request: web.Request) -> web.Response:
    """`POST /_sandbox/reset`: clear logs, counters, scripts and opened windows."""
    request.app[STATE].reset()
    request.app[CALLBACKS].reset(request.app[STATE].config.seed)
    request.app[INBOUND].reset(request.app[STATE].config.seed)
    return _json_response({"ok": True})


async def receive_inbound(request: web.Request) -> web.Response:
    """`POST /_inbound`: customers write to a business number (sandbox/inbound.py)."""
    return await inbound.receive_inbound(request, request.app[STATE], request.app[INBOUND])


async def announce(request: web.Request) -> web.Response:
    """`POST /_sandbox/announce`: a list's in-window recipients wrote in the last hour."""
    return await inbound.announce(request, request.app[STATE], request.app[INBOUND])


async def show_windows(request: web.Request) -> web.Response:
    """`GET /_sandbox/windows`: sends outside the window, pairs opened, incoming posts."""
    return inbound.window_stats(request.app[STATE], request.app[INBOUND])


async def upload_media(request: web.Request) -> web.Response:
    """`POST /v2/{sid}/whatsapp/{phone_number}/media`: a media id for an uploaded file."""
    return await media.upload_media(request, request.app[STATE])


async def serve_media(request: web.Request) -> web.Response:
    """`GET /_sandbox/media/{media_id}`: an uploaded file, over plain http."""
    return media.serve_media(request, request.app[STATE])


async def health(request: web.Request) -> web.Response:
    """`GET /health`."""
    return _json_response({"ok": True})


def build_app(config: SandboxConfig) -> web.Application:
    """The sandbox as an aiohttp application with its own state."""
    app = web.Application()
    app[STATE] = SandboxState(config)
    app[CALLBACKS] = CallbackPoster(config.seed)
    app[INBOUND] = CallbackPoster(config.seed)
    app.router.add_post(SEND_PATH, send_message)
    app.router.add_post(media.MEDIA_PATH, upload_media)
    app.router.add_get(media.SERVED_PATH, serve_media)
    app.router.add_post("/_sandbox/script", add_script)
    app.router.add_post("/_sandbox/config", change_config)
    app.router.add_get("/_sandbox/config", show_config)
    app.router.add_get("/_sandbox/stats", show_stats)
    app.router.add_get("/_sandbox/accepted", show_accepted)
    app.router.add_get("/_sandbox/requests", show_requests)
    app.router.add_get("/_sandbox/callbacks", show_callbacks)
    app.router.add_post("/_sandbox/reset", reset)
    app.router.add_post("/_inbound", receive_inbound)
    app.router.add_post("/_sandbox/announce", announce)
    app.router.add_get("/_sandbox/windows", show_windows)
    app.router.add_get("/health", health)
    app.on_cleanup.append(_close_callbacks)
    return app


async def _close_callbacks(app: web.Application) -> None:
    await app[CALLBACKS].close()
    await app[INBOUND].close()


def run_sandbox(config: SandboxConfig, host: str = "127.0.0.1", port: int = 8077) -> None:
    """Serve the sandbox until interrupted (for the CLI)."""
    app = build_app(config)
    app.on_startup.append(_freeze_startup_heap)
    web.run_app(app, host=host, port=port, access_log=None, backlog=BACKLOG)


async def _freeze_startup_heap(app: web.Application) -> None:
    """Keep what the imports built (~120,000 objects) out of every later full collection.

    Each one scanned them for 60-90 ms, the server stalled meanwhile, and the arrivals that
    queued up were logged at once: a burst the workers never sent (bench/limit.py).
    """
    gc.freeze()
