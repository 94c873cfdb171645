"""Customers writing to a business number, played by the sandbox.

`POST /_inbound` takes `{"from": "+9198...", "wanumber": "+9190...", "type": "text"}` (numbers
with or without `+`, `type` optional) or a JSON list of them: each opens its pair's 24-hour
window now (sandbox/windows.py). `POST /_sandbox/announce` takes `{"sender": ..., "recipients":
[...]}` and does the same for the recipients in the window by the share, each dated up to an
hour ago (seeded), so that a demo's ledger knows the windows the sandbox will honour.

Each message is POSTed to `inbound_url` as Kaleyra's incoming-message callback, by a poster of
its own (retried like a status callback, at most 64 at a time); both routes answer once every
post is answered or given up: `{"opened", "posted", "refused", "gave_up"}`.
`GET /_sandbox/windows` counts sends outside the window, pairs opened and posts.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from stickerq.sandbox.callbacks import CallbackPoster
from stickerq.sandbox.replies import dumps
from stickerq.sandbox.state import SandboxState
from stickerq.sandbox.windows import announce_age, digits, in_share, is_number

MAX_PROBLEMS = 10  # listed in one 400 answer; the rest are counted


class InboundError(ValueError):
    """A customer message or an announce is not what the route takes; the text says why."""


@dataclass(frozen=True)
class Inbound:
    """One customer message: numbers as digits, `at` in epoch seconds."""

    customer: str
    sender: str
    type: str
    at: float


def inbound_payload(message: Inbound) -> dict[str, str]:
    """Kaleyra's incoming-message callback, as a callback profile with every variable fills it."""
    return {
        "from": message.customer,
        "wanumber": message.sender,
        "created_at": str(int(message.at)),
        "type": message.type,
        "body": "hello",
        "name": "Customer",
        "mime_type": "",
        "media_url": "",
        "mobile": message.customer,
    }


def _registered(state: SandboxState, number: Any) -> bool:
    return is_number(number) and digits(number) in {digits(s) for s in state.config.senders}


def _unregistered(name: str, state: SandboxState, value: Any) -> str:
    return f"{name} must be a registered sender {sorted(state.config.senders)}, got {value!r}"


def _message_problems(item: Any, state: SandboxState) -> list[str]:
    if not isinstance(item, dict):
        return [f"must be an object with from and wanumber, got {item!r}"]
    problems = []
    if not is_number(item.get("from")):
        problems.append(f"from must be a phone number like +919812345678, got {item.get('from')!r}")
    if not _registered(state, item.get("wanumber")):
        problems.append(_unregistered("wanumber", state, item.get("wanumber")))
    kind = item.get("type", "text")
    if not isinstance(kind, str) or not kind:
        problems.append(f"type must be a non-empty string such as text, got {kind!r}")
    return problems


def _refuse(problems: list[str]) -> None:
    shown = "; ".join(problems[:MAX_PROBLEMS])
    more = len(problems) - MAX_PROBLEMS
    raise InboundError(shown + (f"; and {more} more" if more > 0 else ""))


def parse_messages(body: Any, state: SandboxState, now: float) -> list[Inbound]:
    """The messages of a `POST /_inbound` body; every problem is named, with its index."""
    items = body if isinstance(body, list) else [body]
    if not items:
        raise InboundError("give a message object or a non-empty list of them")
    problems = [
        f"message {index}: {problem}"
        for index, item in enumerate(items)
        for problem in _message_problems(item, state)
    ]
    if problems:
        _refuse(problems)
    return [
        Inbound(digits(i["from"]), digits(i["wanumber"]), i.get("type", "text"), now) for i in items
    ]


def parse_announce(body: Any, state: SandboxState, now: float) -> tuple[list[Inbound], int]:
    """The messages of the in-window recipients of a `POST /_sandbox/announce` body, and how
    many recipients were left out by the share."""
    if state.config.inbound_url is None:
        raise InboundError(
            "inbound_url is not set, so there is nobody to announce to: give the API's "
            '.../incoming URL (--inbound-url, or POST /_sandbox/config {"inbound_url": ...})'
        )
    if not isinstance(body, dict) or not isinstance(body.get("recipients"), list):
        raise InboundError('give {"sender": "+919000000001", "recipients": ["+9198...", ...]}')
    given, recipients = body.get("sender"), body["recipients"]
    problems = [] if _registered(state, given) else [_unregistered("sender", state, given)]
    problems += [
        f"recipients[{index}] must be a phone number like +919812345678, got {number!r}"
        for index, number in enumerate(recipients)
        if not is_number(number)
    ]
    if problems:
        _refuse(problems)
    config, sender = state.config, digits(body["sender"])
    unique = list(dict.fromkeys(digits(number) for number in recipients))
    inside = [r for r in unique if in_share(config.seed, config.in_window_share, sender, r)]
    messages = [
        Inbound(r, sender, "text", now - announce_age(config.seed, sender, r)) for r in inside
    ]
    return messages, len(unique) - len(inside)


async def _open_and_post(
    state: SandboxState, poster: CallbackPoster, messages: list[Inbound]
) -> dict[str, int]:
    """Open each message's window, then post them all and wait for every answer."""
    for message in messages:
        state.windows.open(message.sender, message.customer, message.at)
    outcomes: Counter[str] = Counter()
    url = state.config.inbound_url
    if url is not None:
        posts = [poster.post(url, inbound_payload(message)) for message in messages]
        outcomes.update(await asyncio.gather(*posts))
    return {"opened": len(messages), **{k: outcomes[k] for k in ("posted", "refused", "gave_up")}}


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=dumps(value), content_type="application/json")


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except ValueError:  # includes UnicodeDecodeError
        raise InboundError("the body is not JSON") from None


async def receive_inbound(
    request: web.Request, state: SandboxState, poster: CallbackPoster
) -> web.Response:
    """`POST /_inbound`: customers write to a business number."""
    try:
        messages = parse_messages(await _body(request), state, time.time())
    except InboundError as exc:
        return _json({"error": str(exc)}, status=400)
    return _json(await _open_and_post(state, poster, messages))


async def announce(
    request: web.Request, state: SandboxState, poster: CallbackPoster
) -> web.Response:
    """`POST /_sandbox/announce`: the in-window recipients of a list wrote in the last hour."""
    try:
        messages, skipped = parse_announce(await _body(request), state, time.time())
    except InboundError as exc:
        return _json({"error": str(exc)}, status=400)
    return _json({**await _open_and_post(state, poster, messages), "skipped": skipped})


def window_stats(state: SandboxState, poster: CallbackPoster) -> web.Response:
    """`GET /_sandbox/windows`: `outside_window`, `opened`, and the posts under `inbound`."""
    return _json({**state.windows.stats(), "inbound": poster.stats()})
