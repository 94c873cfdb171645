"""The Kaleyra client over real loopback HTTP: the wire contract against the sandbox, every
scripted outcome through `classify`, the api-key's secrecy and keep-alive pooling."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from aiohttp import web
from pydantic import SecretStr, ValidationError

from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import PauseScope
from stickerq.worker.kaleyra import KaleyraClient, Reply, StickerRequest, TransportFailure
from stickerq.worker.outcomes import Action, classify
from tests.conftest import SENDER, STICKER_ID, TEST_API_KEY, wait_until

SID = "HXAP16XXXXXX97IN"  # the sandbox's default account
RECIPIENT = "+919812345678"
STICKER_LINK = "https://stickers.example.com/smiling-plant.webp"
REFUSED_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
READ_TIMEOUT = 0.3  # the client gives up on a stalled answer after this
STALL_SECONDS = 0.6  # how long the sandbox stalls a TIMEOUT before answering
LOGGERS = ("", "httpx", "httpcore", "aiohttp", "asyncio", "worker", "stickerq")


def sticker_request(recipient: str = RECIPIENT, **fields: Any) -> StickerRequest:
    return StickerRequest(
        sender=fields.pop("sender", SENDER),
        recipient=recipient,
        sticker=fields.pop("sticker", {"id": STICKER_ID}),
        **fields,
    )


def send_all(
    base_url: str,
    requests: Sequence[StickerRequest],
    *,
    api_key: str = TEST_API_KEY,
    **options: Any,
) -> list[Reply]:
    """Send one after the other with one client, as a worker would, and close it."""

    async def go() -> list[Reply]:
        client = KaleyraClient(base_url=base_url, sid=SID, api_key=SecretStr(api_key), **options)
        try:
            return [await client.send_sticker(request) for request in requests]
        finally:
            await client.aclose()

    return asyncio.run(go())


def answered(sandbox: SandboxServer) -> Callable[[], bool]:
    """For wait_until: every logged request has its outcome recorded."""

    def check() -> bool:
        log = sandbox.requests()
        return bool(log) and all(entry["outcome"] for entry in log)

    return check


def send_one(base_url: str, request: StickerRequest | None = None, **options: Any) -> Reply:
    return send_all(base_url, [request or sticker_request()], **options)[0]


# --- the wire contract ---------------------------------------------------------------------


def test_sticker_by_id_and_by_link_reach_the_sandbox_exactly_as_the_contract_says(
    sandbox: SandboxServer,
) -> None:
    by_id = sticker_request(
        "+919812345001", ref="customer1", ref1="marketing", ref2="dictionary", wa_source="braze"
    )
    by_link = sticker_request("+919812345002", sticker={"link": STICKER_LINK}, ref1="only-ref1")

    replies = send_all(sandbox.url, [by_id, by_link])

    assert [reply.code for reply in replies] == ["WA202", "WA202"]
    first, second = sandbox.requests()
    for entry in (first, second):
        assert (entry["sid"], entry["sender"]) == (SID, SENDER)  # the sender keeps its "+"
        headers = entry["headers"]
        assert headers["content-type"] == "application/json"
        assert headers["cache-control"] == "no-cache"
        assert headers["api-key"] == "***"  # masked by the sandbox's log
        assert headers["api_key_valid"] is True
    assert first["body"] == {
        "messaging_object": {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "+919812345001",
            "type": "sticker",
            "sticker": {"id": STICKER_ID},
        },
        "extra_info": {
            "ref": "customer1",
            "ref1": "marketing",
            "ref2": "dictionary",
            "wa_source": "braze",
        },
    }
    assert second["body"] == {
        "messaging_object": {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "+919812345002",
            "type": "sticker",
            "sticker": {"link": STICKER_LINK},
        },
        "extra_info": {"ref1": "only-ref1", "wa_source": "api"},  # absent refs are omitted
    }
    accepted = sandbox.accepted()
    assert [entry["message_id"] for entry in accepted] == [reply.message_id for reply in replies]
    assert [(e["ref"], e["ref1"], e["ref2"], e["wa_source"]) for e in accepted] == [
        ("customer1", "marketing", "dictionary", "braze"),
        (None, "only-ref1", None, "api"),
    ]


@dataclass
class Seen:
    """One request exactly as it arrived at a bare aiohttp server."""

    method: str
    raw_path: str
    raw_headers: list[tuple[str, str]]
    body: bytes
    client_port: int


@dataclass
class CaptureServer:
    """A bare loopback server answering WA202 that records what the sandbox's log leaves out:
    the raw request line, repeated headers and the client's port."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(
            Seen(
                method=request.method,
                raw_path=request.raw_path,
                raw_headers=[(k.decode(), v.decode()) for k, v in request.raw_headers],
                body=await request.read(),
                client_port=peer[1] if peer else -1,
            )
        )
        body = {"code": "WA202", "message": "Request Accepted", "data": {"message_id": "m1"}}
        return web.json_response(body, status=202)


@asynccontextmanager
async def capture_server() -> AsyncIterator[CaptureServer]:
    server = CaptureServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield server
    finally:
        await runner.cleanup()


def test_request_line_has_a_literal_plus_and_each_header_is_sent_once() -> None:
    async def go() -> list[Seen]:
        async with capture_server() as server:
            client = KaleyraClient(base_url=server.url, sid=SID, api_key=SecretStr(TEST_API_KEY))
            reply = await client.send_sticker(sticker_request(ref="customer1"))
            await client.aclose()
            assert reply.code == "WA202"
            return server.seen

    [seen] = asyncio.run(go())

    assert seen.method == "POST"
    assert seen.raw_path == f"/v2/{SID}/whatsapp/{SENDER}/messages"
    assert SENDER.startswith("+") and "%2B" not in seen.raw_path
    named = [(name.lower(), value) for name, value in seen.raw_headers]
    for name, value in (
        ("content-type", "application/json"),
        ("api-key", TEST_API_KEY),
        ("cache-control", "no-cache"),
    ):
        assert [v for n, v in named if n == name] == [value], name
    assert [v for n, v in named if n == "content-length"] == [str(len(seen.body))]
    assert len([v for n, v in named if n == "host"]) == 1
    assert not [v for n, v in named if n == "transfer-encoding"]  # one plain body, not chunked
    assert json.loads(seen.body)["extra_info"] == {"ref": "customer1", "wa_source": "api"}


# --- pod URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod", "domain"),
    [
        ("in", "https://api.in.kaleyra.io"),
        ("ap", "https://api.ap.kaleyra.io"),
        ("eu", "https://api.eu.kaleyra.io"),
    ],
)
def test_each_pod_has_the_contracts_domain(pod: Literal["in", "ap", "eu"], domain: str) -> None:
    settings = Settings(_env_file=None, kaleyra_pod=pod, kaleyra_base_url=None)  # type: ignore[call-arg]
    assert settings.kaleyra_url == domain
    client = KaleyraClient(base_url=settings.kaleyra_url, sid=SID, api_key=SecretStr("k"))
    assert client.messages_url(SENDER) == f"{domain}/v2/{SID}/whatsapp/{SENDER}/messages"
    asyncio.run(client.aclose())


def test_base_url_overrides_the_pod_and_loses_its_trailing_slash() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        kaleyra_pod="eu",
        kaleyra_base_url="http://127.0.0.1:8077/",
    )
    assert settings.kaleyra_url == "http://127.0.0.1:8077"
    client = KaleyraClient(base_url="http://proxy.local/kaleyra/", sid=SID, api_key=SecretStr("k"))
    assert (
        client.messages_url(SENDER)
        == f"http://proxy.local/kaleyra/v2/{SID}/whatsapp/{SENDER}/messages"
    )
    asyncio.run(client.aclose())


def test_unknown_pod_is_refused() -> None:
    with pytest.raises(ValidationError, match="kaleyra_pod"):
        Settings(_env_file=None, kaleyra_pod="us")  # type: ignore[call-arg, arg-type]


# --- every scripted outcome, then classify ---------------------------------------------------


@dataclass(frozen=True)
class Expected:
    http_status: int | None
    code: str | None
    error_keys: tuple[str, ...]
    json_body: bool
    message_id: bool
    failure: TransportFailure | None
    action: Action
    pause: PauseScope | None


A, S = PauseScope.ACCOUNT, PauseScope.SENDER
AMBIGUOUS = TransportFailure.AMBIGUOUS
# scripted outcome -> what the Reply holds and what the contract's outcome table does with it
OUTCOME_ROWS: dict[str, Expected] = {
    "WA202": Expected(202, "WA202", (), True, True, None, Action.SENT, None),
    "WA200": Expected(200, "WA200", (), True, True, None, Action.SENT, None),
    "WA500": Expected(500, "WA500", ("error",), True, False, None, Action.RETRY, None),
    "E110": Expected(400, "E110", ("balance",), True, False, None, Action.PARK, A),
    "WA401": Expected(401, "WA401", ("phone_number",), True, False, None, Action.PARK, S),
    "WAV2101": Expected(429, "WAV2101", ("account",), True, False, None, Action.PARK, A),
    "WA400": Expected(400, "WA400", ("payload",), True, False, None, Action.FAIL, None),
    "RBC001": Expected(401, "RBC001", ("error",), True, False, None, Action.FAIL, A),
    "WA-401-account": Expected(401, "WA-401", ("account",), True, False, None, Action.FAIL, A),
    "WA-401-version": Expected(401, "WA-401", ("phone_number",), True, False, None, Action.FAIL, S),
    "NO_MESSAGE_ID": Expected(202, "WA202", (), True, False, None, Action.UNKNOWN, None),
    "UNKNOWN_CODE": Expected(200, "WA999", (), True, False, None, Action.UNKNOWN, None),
    "HTML_502": Expected(502, None, (), False, False, None, Action.UNKNOWN, None),
    "DROP": Expected(None, None, (), False, False, AMBIGUOUS, Action.UNKNOWN, None),
    "TIMEOUT": Expected(None, None, (), False, False, AMBIGUOUS, Action.UNKNOWN, None),
}


def assert_reply(reply: Reply, expected: Expected) -> None:
    assert reply.http_status == expected.http_status
    assert reply.code == expected.code
    assert reply.error_keys == expected.error_keys
    assert reply.json_body is expected.json_body
    assert (reply.message_id is not None) is expected.message_id
    assert reply.failure is expected.failure
    assert reply.latency_ms >= 0
    outcome = classify(reply)
    assert (outcome.action, outcome.pause) == (expected.action, expected.pause)


@pytest.mark.parametrize("name", list(OUTCOME_ROWS))
def test_scripted_outcome_gives_the_expected_reply_and_action(
    name: str, sandbox: SandboxServer
) -> None:
    expected = OUTCOME_ROWS[name]
    sandbox.configure(timeout_seconds=STALL_SECONDS)
    sandbox.script({RECIPIENT: [name]})

    reply = send_one(sandbox.url, read_timeout=READ_TIMEOUT)

    assert_reply(reply, expected)
    wait_until(answered(sandbox))  # a TIMEOUT is logged once its stall ends
    [entry] = sandbox.requests()
    assert entry["outcome"] == name  # the script was used, not a default answer
    if expected.message_id:
        assert reply.message_id == entry["message_id"]
        assert reply.detail == "Request Accepted"
    elif expected.error_keys:
        assert reply.detail is not None
        assert all(f"{key}: " in reply.detail for key in expected.error_keys)
    if name == "HTML_502":
        assert reply.detail is not None and "Bad Gateway" in reply.detail
    if name == "TIMEOUT":
        assert reply.latency_ms >= READ_TIMEOUT * 1000 * 0.9
        assert entry["http_status"] is None  # the late answer found the client gone
        assert sandbox.stats()["accepted_total"] == 0


def test_wrong_api_key_is_rbc001_and_fails_with_an_account_pause(sandbox: SandboxServer) -> None:
    reply = send_one(sandbox.url, api_key="not-the-key")
    assert_reply(reply, OUTCOME_ROWS["RBC001"])
    assert sandbox.requests()[0]["headers"]["api_key_valid"] is False


def test_unregistered_sender_is_wa401_and_parks_with_a_sender_pause(
    sandbox: SandboxServer,
) -> None:
    reply = send_one(sandbox.url, sticker_request(sender="+919000000999"))
    assert_reply(reply, OUTCOME_ROWS["WA401"])


def test_connection_refused_is_not_sent() -> None:
    reply = send_one(REFUSED_URL, connect_timeout=2.0)
    assert reply.failure is TransportFailure.NOT_SENT
    assert (reply.http_status, reply.code, reply.json_body) == (None, None, False)
    assert reply.detail
    assert classify(reply).action is Action.NOT_SENT
    assert classify(reply).pause is None


async def _answer_raw(answer: bytes) -> asyncio.Server:
    """A TCP server that reads one whole request, writes `answer` as is, and hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.write(answer)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"garbage\r\n\r\n", id="bad-status-line"),
        pytest.param(
            b"HTTP/1.1 202 Accepted\r\nX-Big: "
            + b"a" * 70_000
            + b"\r\nContent-Length: 2\r\n\r\n{}",
            id="oversized-header",
        ),
        pytest.param(
            b"HTTP/1.1 202 Accepted\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nabcde",
            id="undecodable-gzip-body",
        ),
    ],
)
def test_garbled_answer_after_sending_is_an_unknown_reply_without_the_key(answer: bytes) -> None:
    async def go() -> Reply:
        server = await _answer_raw(answer)
        port = server.sockets[0].getsockname()[1]
        client = KaleyraClient(
            base_url=f"http://127.0.0.1:{port}", sid=SID, api_key=SecretStr(TEST_API_KEY)
        )
        try:
            return await client.send_sticker(sticker_request())
        except Exception as exc:  # what escapes today: show whether it also leaks the key
            raise AssertionError(
                f"{type(exc).__name__} escaped send_sticker; "
                f"api-key in its repr: {TEST_API_KEY in repr(exc)}"
            ) from None
        finally:
            await client.aclose()
            server.close()

    reply = asyncio.run(go())

    assert classify(reply).action is Action.UNKNOWN  # the request went out: never resent
    assert TEST_API_KEY not in repr(reply)


# --- secrecy ---------------------------------------------------------------------------------


def test_api_key_never_appears_in_reprs_details_or_logs(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    sandbox.configure(timeout_seconds=STALL_SECONDS)
    recipients = {name: f"+9198765432{index:02d}" for index, name in enumerate(OUTCOME_ROWS)}
    sandbox.script({recipient: [name] for name, recipient in recipients.items()})
    client = KaleyraClient(
        base_url=sandbox.url,
        sid=SID,
        api_key=SecretStr(TEST_API_KEY),
        read_timeout=READ_TIMEOUT,
    )

    async def go() -> list[Reply]:
        replies = [
            await client.send_sticker(sticker_request(recipient))
            for recipient in recipients.values()
        ]
        await client.aclose()
        return replies

    replies = asyncio.run(go())
    wait_until(answered(sandbox))  # the stalled TIMEOUT, before the sandbox stops
    replies.append(send_one(REFUSED_URL, connect_timeout=2.0))
    replies.append(send_one(sandbox.url, api_key="wrong-" + TEST_API_KEY))  # RBC001

    assert [reply.failure for reply in replies].count(TransportFailure.AMBIGUOUS) == 2
    assert replies[-2].failure is TransportFailure.NOT_SENT
    assert TEST_API_KEY not in repr(client) and TEST_API_KEY not in str(client)
    for reply in replies:
        outcome = classify(reply)
        for text in (repr(reply), str(reply), reply.detail or "", outcome.reason, repr(outcome)):
            assert TEST_API_KEY not in text
    assert "HTTP Request: POST" in caplog.text  # the capture saw the client's own log lines
    assert TEST_API_KEY not in caplog.text
    assert all(TEST_API_KEY not in repr(record.__dict__) for record in caplog.records)


# --- keep-alive pooling ----------------------------------------------------------------------
# The sandbox's request log has no client port, so the bare capture server counts them.


def test_sequential_sends_reuse_one_pooled_connection() -> None:
    async def go() -> tuple[list[Seen], list[Seen]]:
        async with capture_server() as server:
            client = KaleyraClient(base_url=server.url, sid=SID, api_key=SecretStr(TEST_API_KEY))
            for _ in range(50):
                assert (await client.send_sticker(sticker_request())).code == "WA202"
            await client.aclose()
            pooled = list(server.seen)
            for _ in range(3):  # the control: a fresh client each time opens a new connection
                client = KaleyraClient(
                    base_url=server.url, sid=SID, api_key=SecretStr(TEST_API_KEY)
                )
                await client.send_sticker(sticker_request())
                await client.aclose()
            return pooled, server.seen[len(pooled) :]

    pooled, fresh = asyncio.run(go())

    assert len(pooled) == 50
    assert len({seen.client_port for seen in pooled}) == 1
    assert len({seen.client_port for seen in fresh}) == 3
