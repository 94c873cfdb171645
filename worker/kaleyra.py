"""Kaleyra WhatsApp v2 client for sticker messages: the exact wire contract, nothing else.

Every request and every failure becomes a `Reply`; turning a reply into an action is
`outcomes.classify`'s job. The api-key lives only in the client's header list: it is
never part of a repr, a log line, an exception or a `Reply`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp
import httpx
import yarl
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


def parse_reply(http_status: int, content: bytes, latency_ms: float) -> Reply:
    """Read a Kaleyra answer robustly: any body, JSON or not, becomes a Reply."""
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or absurdly nested
        body = None
    if not isinstance(body, dict):
        text = content[:480].decode("utf-8", errors="replace")
        return Reply(
            latency_ms=latency_ms,
            http_status=http_status,
            detail=f"non-JSON body: {text[:120]!r}",
        )
    data = body.get("data")
    error = body.get("error")
    message_id = data.get("message_id") if isinstance(data, dict) else None
    code = body.get("code")
    return Reply(
        latency_ms=latency_ms,
        http_status=http_status,
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


def transport_failure(exc: aiohttp.ClientError) -> TransportFailure:
    """Could this failure have happened after the request went out?

    Only a failure to connect (refused, DNS, TLS handshake, connect timeout) proves it never
    left; a dropped connection, a read timeout or a garbled answer may come after Kaleyra
    took it.
    """
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
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
        session: Callable[[], aiohttp.ClientSession] | None = None,
    ) -> None:
        self.sid = sid
        self._base_url = base_url.rstrip("/")
        self._max_connections = max_connections
        # No wait for a pooled connection is bounded (the caller bounds what is in flight);
        # connecting and each read are.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._headers = {
            "Content-Type": "application/json",
            "api-key": api_key.get_secret_value(),
            "cache-control": "no-cache",
        }
        # aiohttp directly, not httpx over an aiohttp transport: httpx's request and response
        # objects and headers around each aiohttp call were a quarter of a worker's CPU per
        # message (py-spy, bench/throughput.py). The session is made on the event loop, on
        # first use; `session` replaces it in tests.
        self._new_session = session or self._default_session
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, yarl.URL] = {}

    def __repr__(self) -> str:
        return f"KaleyraClient(base_url={self._base_url!r}, sid={self.sid!r})"

    def messages_url(self, sender: str) -> str:
        return f"{self._base_url}/v2/{self.sid}/whatsapp/{sender}/messages"

    def _default_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            keepalive_timeout=5.0,  # well under common server keep-alive timeouts
            # as httpx verified: SSL_CERT_FILE or SSL_CERT_DIR when set, else certifi's bundle
            ssl=httpx.create_ssl_context(),
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=False,  # a compressed answer is read as it came: not JSON
        )

    async def send_sticker(self, request: StickerRequest) -> Reply:
        if self._session is None:
            self._session = self._new_session()
        url = self._urls.get(request.sender)
        if url is None:  # encoded=True: the sender's "+" stays a literal "+" in the path
            url = self._urls[request.sender] = yarl.URL(
                self.messages_url(request.sender), encoded=True
            )
        content = json.dumps(request_body(request), separators=(",", ":")).encode()
        started = time.perf_counter()
        try:
            async with self._session.post(
                url, data=content, headers=self._headers, allow_redirects=False
            ) as response:
                body = await response.read()
                http_status = response.status
        except aiohttp.ClientError as exc:
            return _failed(started, transport_failure(exc), exc)
        return parse_reply(http_status, body, _since(started))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _failed(started: float, failure: TransportFailure, exc: Exception) -> Reply:
    # str(), never repr(): some aiohttp errors carry the request headers (the api-key) in repr.
    detail = f"{type(exc).__name__}: {exc}"[:DETAIL_LIMIT]
    return Reply(latency_ms=_since(started), failure=failure, detail=detail)


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
