"""Narrow unit tests of the reply parser, the outcome table and the transport-failure rule."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from pydantic import SecretStr

from stickerq.states import MessageStatus, PauseScope
from stickerq.worker.kaleyra import (
    DETAIL_LIMIT,
    KaleyraClient,
    Reply,
    StickerRequest,
    TransportFailure,
    parse_reply,
    transport_failure,
)
from stickerq.worker.outcomes import FINAL_STATUS, OUTCOME_TABLE, Action, classify

A, S = PauseScope.ACCOUNT, PauseScope.SENDER
KEY = "unit-test-key-0c4d2e"

# --- parse_reply -----------------------------------------------------------------------------

# The contract's response rows as valid JSON (docs/kaleyra-contract.md).
WA401_MSG = "Phone number is not present or does not belong to the account."
E110_MSG = "Please check your balance, You have a low balance!"
ACCOUNT_MSG = "API is not available for given customer.Please contact support for more info"
VERSION_MSG = (
    "The phone number you're using is associated with different Version of our WA API. "
    "Please use the appropriate endpoint."
)


def body(code: str, message: str, error: dict[str, str], data: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {} if data is None else data, "error": error}


# row -> (HTTP status, body, code, message_id, error_keys)
CONTRACT_ROWS: dict[str, tuple[int, dict[str, Any], str, str | None, tuple[str, ...]]] = {
    "WA202": (
        202,
        body("WA202", "Request Accepted", {}, {"message_id": "AXXXXXXXXXXXXXXXXXXX"}),
        "WA202",
        "AXXXXXXXXXXXXXXXXXXX",
        (),
    ),
    "WA200": (
        200,
        body("WA200", "Request Accepted", {}, {"message_id": "A200"}),
        "WA200",
        "A200",
        (),
    ),
    "WAV2101": (
        429,
        body("WAV2101", "Account daily limit reached", {}),
        "WAV2101",
        None,
        (),
    ),
    "RBC001": (
        401,
        body("RBC001", "Incorrect SID or API key.", {"error": "Incorrect SID or API key."}, []),
        "RBC001",
        None,
        ("error",),
    ),
    "WA401": (
        401,
        body("WA401", WA401_MSG, {"phone_number": WA401_MSG}),
        "WA401",
        None,
        ("phone_number",),
    ),
    "WA400": (
        400,
        body("WA400", "Refer to correct payload format", {"payload": "Incorrect payload format"}),
        "WA400",
        None,
        ("payload",),
    ),
    "WA500": (
        500,
        body("WA500", "Please try again later", {"error": "Internal server error"}),
        "WA500",
        None,
        ("error",),
    ),
    "E110": (400, body("E110", E110_MSG, {"balance": E110_MSG}), "E110", None, ("balance",)),
    "WA-401-account": (
        401,
        body("WA-401", ACCOUNT_MSG, {"account": ACCOUNT_MSG}),
        "WA-401",
        None,
        ("account",),
    ),
    "WA-401-version": (
        401,
        body("WA-401", VERSION_MSG, {"phone_number": VERSION_MSG}),
        "WA-401",
        None,
        ("phone_number",),
    ),
}

# The seed page's success sample, verbatim: its missing commas make it invalid JSON.
SAMPLE_SUCCESS_WITH_MISSING_COMMAS = b"""{
"code":"WA202"
"message":"Request Accepted",
"data":{
  "message_id":"AXXXXXXXXXXXXXXXXXXX"
}
"error":{}
}"""


@pytest.mark.parametrize("row", list(CONTRACT_ROWS))
def test_parse_reply_reads_each_contract_row(row: str) -> None:
    status, payload, code, message_id, error_keys = CONTRACT_ROWS[row]

    reply = parse_reply(status, json.dumps(payload).encode(), latency_ms=12.5)

    assert reply == Reply(
        latency_ms=12.5,
        http_status=status,
        code=code,
        message_id=message_id,
        error_keys=error_keys,
        detail=reply.detail,
        json_body=True,
        failure=None,
    )
    assert reply.detail is not None and reply.detail.startswith(payload["message"])
    for key, value in payload["error"].items():
        assert f"{key}: {value}" in reply.detail


def test_parse_reply_treats_the_contracts_own_sample_with_missing_commas_as_non_json() -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(SAMPLE_SUCCESS_WITH_MISSING_COMMAS)

    reply = parse_reply(202, SAMPLE_SUCCESS_WITH_MISSING_COMMAS, latency_ms=1.0)

    assert (reply.http_status, reply.code, reply.message_id) == (202, None, None)
    assert reply.json_body is False
    assert reply.detail is not None and reply.detail.startswith("non-JSON body: ")
    assert classify(reply).action is Action.UNKNOWN  # a 202 we cannot read is never resent


def test_parse_reply_takes_no_message_id_from_a_list_data() -> None:
    payload = {"code": "RBC001", "message": "m", "data": [{"message_id": "x"}], "error": {}}
    reply = parse_reply(401, json.dumps(payload).encode(), 1.0)
    assert (reply.code, reply.message_id, reply.json_body) == ("RBC001", None, True)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'[{"code": "WA202"}]', id="json-list"),
        pytest.param(b'"WA202"', id="json-string"),
        pytest.param(b"202", id="json-number"),
        pytest.param(b"null", id="json-null"),
        pytest.param(b"", id="empty"),
        pytest.param(b"<html><body>Bad Gateway</body></html>", id="html"),
        pytest.param(b'{"code": "WA202", "message": "caf\xe9"}', id="latin-1"),
        pytest.param(b"\xff\xfe\xfd\x00\x81", id="binary"),
    ],
)
def test_parse_reply_turns_a_body_that_is_not_a_json_object_into_a_non_json_reply(
    content: bytes,
) -> None:
    reply = parse_reply(202, content, latency_ms=3.0)

    assert (reply.http_status, reply.code, reply.message_id, reply.json_body) == (
        202,
        None,
        None,
        False,
    )
    assert reply.failure is None
    assert reply.detail is not None and reply.detail.startswith("non-JSON body: ")
    assert classify(reply).action is Action.UNKNOWN


def test_parse_reply_keeps_a_json_object_without_code_as_json_with_no_code() -> None:
    reply = parse_reply(202, b'{"message": "Request Accepted", "data": {}}', 1.0)
    assert (reply.json_body, reply.code, reply.detail) == (True, None, "Request Accepted")
    assert classify(reply).action is Action.UNKNOWN


def test_parse_reply_reads_a_non_string_code_and_message_id_as_strings() -> None:
    reply = parse_reply(202, b'{"code": 202, "data": {"message_id": 12345}}', 1.0)
    assert (reply.code, reply.message_id) == ("202", "12345")


def test_parse_reply_bounds_the_detail() -> None:
    html = b"<html>" + b"x" * 10_000 + b"</html>"
    assert len(parse_reply(502, html, 1.0).detail or "") < 200
    long = body("WA400", "m" * 5_000, {"payload": "p" * 5_000})
    assert len(parse_reply(400, json.dumps(long).encode(), 1.0).detail or "") == (DETAIL_LIMIT)


def test_parse_reply_turns_a_deeply_nested_body_into_a_non_json_reply() -> None:
    reply = parse_reply(202, b"[" * 100_000, 1.0)
    assert reply.json_body is False
    assert classify(reply).action is Action.UNKNOWN


# --- classify, row by row --------------------------------------------------------------------


def http(code: str | None, status: int = 200, **fields: Any) -> Reply:
    return Reply(latency_ms=1.0, http_status=status, code=code, json_body=True, **fields)


# row -> (reply, action, pause)
CLASSIFY_ROWS: dict[str, tuple[Reply, Action, PauseScope | None]] = {
    "WA202 with message_id": (http("WA202", 202, message_id="m1"), Action.SENT, None),
    "WA202 without message_id": (http("WA202", 202), Action.UNKNOWN, None),
    "WA200 with message_id": (http("WA200", 200, message_id="m1"), Action.SENT, None),
    "WA200 without message_id": (http("WA200", 200), Action.UNKNOWN, None),
    "WA500": (http("WA500", 500, error_keys=("error",)), Action.RETRY, None),
    "HTTP 200 with WA500 code": (http("WA500", 200), Action.RETRY, None),
    "HTTP 500 with WA202 code and message_id": (
        http("WA202", 500, message_id="m1"),
        Action.SENT,
        None,
    ),
    "E110": (http("E110", 400, error_keys=("balance",)), Action.PARK, A),
    "WA401": (http("WA401", 401, error_keys=("phone_number",)), Action.PARK, S),
    "WAV2101": (http("WAV2101", 429), Action.PARK, A),
    "RBC001": (http("RBC001", 401, error_keys=("error",)), Action.FAIL, A),
    "WA-401 account": (http("WA-401", 401, error_keys=("account",)), Action.FAIL, A),
    "WA-401 phone_number": (http("WA-401", 401, error_keys=("phone_number",)), Action.FAIL, S),
    "WA-401 without error keys": (http("WA-401", 401), Action.FAIL, A),
    "WA400": (http("WA400", 400, error_keys=("payload",)), Action.FAIL, None),
    "unknown code": (http("WA999", 200), Action.UNKNOWN, None),
    "code missing": (http(None, 202), Action.UNKNOWN, None),
    "non-JSON 502": (Reply(1.0, http_status=502, detail="non-JSON"), Action.UNKNOWN, None),
    "non-JSON 202": (Reply(1.0, http_status=202), Action.UNKNOWN, None),
    "nothing was sent": (Reply(1.0, failure=TransportFailure.NOT_SENT), Action.NOT_SENT, None),
    "no answer after sending": (
        Reply(1.0, failure=TransportFailure.AMBIGUOUS),
        Action.UNKNOWN,
        None,
    ),
}


@pytest.mark.parametrize("row", list(CLASSIFY_ROWS))
def test_classify_gives_the_contracts_action_and_pause(row: str) -> None:
    reply, action, pause = CLASSIFY_ROWS[row]
    outcome = classify(reply)
    assert (outcome.action, outcome.pause) == (action, pause)
    assert outcome.reason


def test_outcome_table_holds_exactly_the_contracts_codes() -> None:
    assert OUTCOME_TABLE == {
        "WA202": (Action.SENT, None),
        "WA200": (Action.SENT, None),
        "WA500": (Action.RETRY, None),
        "E110": (Action.PARK, A),
        "WA401": (Action.PARK, S),
        "WAV2101": (Action.PARK, A),
        "RBC001": (Action.FAIL, A),
        "WA400": (Action.FAIL, None),
    }  # WA-401 is decided by its error key in classify()


def test_final_actions_map_to_message_statuses_and_the_others_do_not() -> None:
    assert FINAL_STATUS == {
        Action.SENT: MessageStatus.SENT,
        Action.PARK: MessageStatus.PARKED,
        Action.FAIL: MessageStatus.FAILED,
        Action.UNKNOWN: MessageStatus.UNKNOWN,
    }  # RETRY and NOT_SENT leave the message due again


# --- transport_failure -----------------------------------------------------------------------

CONNECTION_KEY = ConnectionKey("api.in.kaleyra.io", 443, True, True, None, None, None)

# What aiohttp raises, and whether the request may have gone out.
AIOHTTP_ERRORS: dict[str, tuple[aiohttp.ClientError, TransportFailure]] = {
    "server disconnect": (aiohttp.ServerDisconnectedError(), TransportFailure.AMBIGUOUS),
    "connection refused": (
        aiohttp.ClientConnectorError(CONNECTION_KEY, ConnectionRefusedError(111, "refused")),
        TransportFailure.NOT_SENT,
    ),
    "DNS failure": (
        aiohttp.ClientConnectorDNSError(CONNECTION_KEY, OSError(-2, "Name or service not known")),
        TransportFailure.NOT_SENT,
    ),
    "connect timeout": (
        aiohttp.ConnectionTimeoutError("Connection timeout to host"),
        TransportFailure.NOT_SENT,
    ),
    "read timeout": (
        aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
        TransportFailure.AMBIGUOUS,
    ),
    "connection reset after sending": (
        aiohttp.ClientOSError(104, "Connection reset by peer"),
        TransportFailure.AMBIGUOUS,
    ),
    "truncated answer": (
        aiohttp.ClientPayloadError("Response payload is not completed"),
        TransportFailure.AMBIGUOUS,
    ),
}


@pytest.mark.parametrize("row", list(AIOHTTP_ERRORS))
def test_transport_failure_says_not_sent_only_for_a_failure_to_connect(row: str) -> None:
    exc, expected = AIOHTTP_ERRORS[row]
    assert transport_failure(exc) is expected


# --- the client's failure replies, through a session that raises -----------------------------


class RaisingSession:
    """Stands in for aiohttp.ClientSession: records each POST, then raises `exc`."""

    def __init__(self, exc: aiohttp.ClientError) -> None:
        self.exc = exc
        self.posts: list[dict[str, Any]] = []

    def post(self, url: Any, **options: Any) -> RaisingSession:
        self.posts.append({"url": str(url), **options})
        return self

    async def __aenter__(self) -> None:
        raise self.exc

    async def __aexit__(self, *_: object) -> None:
        return None

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("row", "action"),
    [("connection refused", Action.NOT_SENT), ("read timeout", Action.UNKNOWN)],
)
def test_send_sticker_turns_a_transport_error_into_a_failure_reply(
    row: str, action: Action
) -> None:
    exc, failure = AIOHTTP_ERRORS[row]
    session = RaisingSession(exc)

    async def go() -> Reply:
        client = KaleyraClient(
            base_url="https://api.in.kaleyra.io",
            sid="HXAP16XXXXXX97IN",
            api_key=SecretStr(KEY),
            session=lambda: session,  # type: ignore[arg-type, return-value]
        )
        request = StickerRequest(sender="+919000000001", recipient="+919812345678", sticker={})
        try:
            return await client.send_sticker(request)
        finally:
            await client.aclose()

    reply = asyncio.run(go())

    assert session.posts[0]["headers"]["api-key"] == KEY  # the key was on the request...
    assert (reply.failure, reply.http_status, reply.json_body) == (failure, None, False)
    assert reply.detail == f"{type(exc).__name__}: {exc}"
    assert classify(reply).action is action
    assert KEY not in repr(reply)  # ...and is nowhere in what came back
