"""Kaleyra WhatsApp v2 client for sticker messages: the exact wire contract, nothing else.

Every request and every failure becomes a `Reply`; turning a reply into an action is
`outcomes.classify`'s job. The api-key lives only in the client's header list: it is
never part of a repr, a log line, an exception or a `Reply`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from pydantic import SecretStr

DETAIL_LIMIT = 300


@dataclass(frozen=True, slots=True)
class StickerRequest:
    """One sticker to one recipient, with the campaign's sticker and the message's refs."""

    sender: str
    recipient: str
    sticker: dict[str, str]  # {"id": media_id} or {"link": https_url}
    ref: str | None = None
    ref1: str | None = None
    ref2: str | None = None
    wa_source: str = "api"


class TransportFailure(StrEnum):
    NOT_SENT = "not_sent"  # no connection was made: the request provably never left
    AMBIGUOUS = "ambiguous"  # the request may have reached Kaleyra (timeout, dropped connection)


@dataclass(frozen=True, slots=True)
class Reply:
    """What one request came back with: an HTTP answer, or a transport failure."""

    latency_ms: float
    http_status: int | None = None
    code: str | None = None
    message_id: str | None = None
    error_keys: tuple[str, ...] = ()
    detail: str | None = None
    json_body: bool = False
    failure: TransportFailure | None = None


def request_body(request: StickerRequest) -> dict[str, Any]:
    extra_info: dict[str, str] = {"wa_source": request.wa_source}
    for key in ("ref", "ref1", "ref2"):
        value = getattr(request, key)
        if value is not None:
            extra_info[key] = value
    return {
        "messaging_object": {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": request.recipient,
            "type": "sticker",  # the API defaults to text without it
            "sticker": request.sticker,
        },
        "extra_info": extra_info,
    }


def parse_reply(response: httpx.Response, latency_ms: float) -> Reply:
    """Read a Kaleyra answer robustly: any body, JSON or not, becomes a Reply."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or absurdly nested
        body = None
    if not isinstance(body, dict):
        return Reply(
            latency_ms=latency_ms,
            http_status=response.status_code,
            detail=f"non-JSON body: {response.text[:120]!r}",
        )
    data = body.get("data")
    error = body.get("error")
    message_id = data.get("message_id") if isinstance(data, dict) else None
    code = body.get("code")
    return Reply(
        latency_ms=latency_ms,
        http_status=response.status_code,
        code=str(code) if code is not None else None,
        message_id=str(message_id) if message_id else None,
        error_keys=tuple(error) if isinstance(error, dict) else (),
        detail=_detail(body),
        json_body=True,
    )


def _detail(body: dict[str, Any]) -> str | None:
    message = body.get("message")
    error = body.get("error")
    parts = [str(message)] if message else []
    if isinstance(error, dict) and error:
        parts.append("; ".join(f"{key}: {value}" for key, value in error.items()))
    return " | ".join(parts)[:DETAIL_LIMIT] or None


def transport_failure(exc: httpx.TransportError) -> TransportFailure:
    """Could this failure have happened after the request went out?

    httpx-aiohttp maps every aiohttp connection error, including a server disconnect *after*
    the request was written, to ConnectTimeout; only the original cause tells them apart.
    """
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        if isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
            return TransportFailure.NOT_SENT
        return TransportFailure.AMBIGUOUS
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return TransportFailure.NOT_SENT
    return TransportFailure.AMBIGUOUS


class KaleyraClient:
    """Sends stickers for one account (SID) over pooled keep-alive connections."""

    def __init__(
        self,
        *,
        base_url: str,
        sid: str,
        api_key: SecretStr,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,  # well under common server keep-alive timeouts
        )
        self.sid = sid
        self._base_url = base_url.rstrip("/")
        # httpx's transport interface directly, without AsyncClient: its merging of URL,
        # headers, cookies and parameters, its cookie jar and its auth and redirect layers
        # cost a third of a worker's CPU per message, for nothing this API uses.
        self._transport = transport or AiohttpTransport(limits=limits)
        self._extensions = {
            "timeout": httpx.Timeout(read_timeout, connect=connect_timeout, pool=None).as_dict()
        }
        self._headers = [
            (b"Content-Type", b"application/json"),
            (b"api-key", api_key.get_secret_value().encode()),
            (b"cache-control", b"no-cache"),
        ]
        self._targets: dict[str, tuple[httpx.URL, list[tuple[bytes, bytes]]]] = {}

    def __repr__(self) -> str:
        return f"KaleyraClient(base_url={self._base_url!r}, sid={self.sid!r})"

    def messages_url(self, sender: str) -> str:
        return f"{self._base_url}/v2/{self.sid}/whatsapp/{sender}/messages"

    async def send_sticker(self, request: StickerRequest) -> Reply:
        http_request = self._http_request(request)
        started = time.perf_counter()
        try:
            response = await self._transport.handle_async_request(http_request)
            try:
                await response.aread()
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            return _failed(started, transport_failure(exc), exc)
        except (httpx.DecodingError, aiohttp.ClientError) as exc:
            # A garbled answer (bad status line, undecodable body): the request went out.
            return _failed(started, TransportFailure.AMBIGUOUS, exc)
        return parse_reply(response, _since(started))

    def _http_request(self, request: StickerRequest) -> httpx.Request:
        target = self._targets.get(request.sender)
        if target is None:
            url = httpx.URL(self.messages_url(request.sender))
            target = self._targets[request.sender] = (url, [(b"Host", url.netloc), *self._headers])
        url, headers = target
        content = json.dumps(request_body(request), separators=(",", ":")).encode()
        http_request = httpx.Request(
            "POST",
            url,
            headers=[*headers, (b"Content-Length", str(len(content)).encode())],
            stream=httpx.ByteStream(content),
            extensions=self._extensions,
        )
        http_request.read()  # the body in hand, as a transport expects it
        return http_request

    async def aclose(self) -> None:
        await self._transport.aclose()


def _failed(started: float, failure: TransportFailure, exc: Exception) -> Reply:
    # str(), never repr(): some aiohttp errors carry the request headers (the api-key) in repr.
    detail = f"{type(exc).__name__}: {exc}"[:DETAIL_LIMIT]
    return Reply(latency_ms=_since(started), failure=failure, detail=detail)


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
