"""The sandbox, over real HTTP on loopback: Kaleyra's contract, fault injection, bookkeeping."""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from stickerq.sandbox import (
    SandboxConfig,
    SandboxConfigError,
    SandboxControlError,
    SandboxServer,
)
from stickerq.sandbox.state import SandboxState

SID = "HXAP16XXXXXX97IN"
KEY = "sandbox-key"
SENDER = "+919000000001"
RECIPIENT = "+919812345678"
SECRET_KEY = "Asecret-value-that-must-never-leak-3"

VALID_BODY: dict[str, Any] = {
    "messaging_object": {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": RECIPIENT,
        "type": "sticker",
        "sticker": {"id": "798123456789012"},
    },
    "extra_info": {
        "ref": "customer1",
        "ref1": "marketing",
        "ref2": "dictionary",
        "wa_source": "api",
    },
}

# The contract's sample bodies (docs/kaleyra-contract.md), as valid JSON, written out here
# independently of the sandbox's own table.
WA401_MSG = "Phone number is not present or does not belong to the account."
E110_MSG = "Please check your balance, You have a low balance!"
ACCOUNT_MSG = "API is not available for given customer.Please contact support for more info"
VERSION_MSG = (
    "The phone number you're using is associated with different Version of our WA API. "
    "Please use the appropriate endpoint."
)
CONTRACT_ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "RBC001": (
        401,
        {
            "code": "RBC001",
            "message": "Incorrect SID or API key.",
            "data": [],
            "error": {"error": "Incorrect SID or API key."},
        },
    ),
    "WA401": (
        401,
        {"code": "WA401", "message": WA401_MSG, "data": {}, "error": {"phone_number": WA401_MSG}},
    ),
    "WA400": (
        400,
        {
            "code": "WA400",
            "message": "Refer to correct payload format",
            "data": {},
            "error": {"payload": "Incorrect payload format"},
        },
    ),
    "WA500": (
        500,
        {
            "code": "WA500",
            "message": "Please try again later",
            "data": {},
            "error": {"error": "Internal server error"},
        },
    ),
    "E110": (
        400,
        {"code": "E110", "message": E110_MSG, "data": {}, "error": {"balance": E110_MSG}},
    ),
    "WA-401-account": (
        401,
        {"code": "WA-401", "message": ACCOUNT_MSG, "data": {}, "error": {"account": ACCOUNT_MSG}},
    ),
    "WA-401-version": (
        401,
        {
            "code": "WA-401",
            "message": VERSION_MSG,
            "data": {},
            "error": {"phone_number": VERSION_MSG},
        },
    ),
    "WAV2101": (
        429,
        {
            "code": "WAV2101",
            "message": "Account daily limit reached",
            "data": {},
            "error": {"account": "Account daily limit reached"},
        },
    ),
}


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(timeout_seconds=0.5), port=0) as server:
        yield server


def body_with(path: str, value: Any) -> dict[str, Any]:
    """VALID_BODY with the field at dotted `path` set to `value` (or removed when ...)."""
    body = copy.deepcopy(VALID_BODY)
    *parents, leaf = path.split(".")
    node = body
    for name in parents:
        node = node[name]
    if value is ...:
        del node[leaf]
    else:
        node[leaf] = value
    return body


def send_url(sandbox: SandboxServer, sender: str = SENDER, sid: str = SID) -> str:
    return f"{sandbox.url}/v2/{sid}/whatsapp/{quote(sender, safe='')}/messages"


def send(
    sandbox: SandboxServer,
    body: Any = VALID_BODY,
    *,
    sender: str = SENDER,
    sid: str = SID,
    api_key: str | None = KEY,
    timeout: httpx.Timeout | float = 5.0,
) -> httpx.Response:
    headers = {"cache-control": "no-cache"}
    if api_key is not None:
        headers["api-key"] = api_key
    return httpx.post(send_url(sandbox, sender, sid), json=body, headers=headers, timeout=timeout)


def to(recipient: str) -> dict[str, Any]:
    return body_with("messaging_object.to", recipient)


def assert_contract_error(response: httpx.Response, name: str) -> None:
    status, body = CONTRACT_ERRORS[name]
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == body


# --- the send endpoint: success ---------------------------------------------------------


def test_health(sandbox: SandboxServer) -> None:
    response = httpx.get(f"{sandbox.url}/health")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_valid_send_is_answered_wa202_with_a_fresh_message_id(sandbox: SandboxServer) -> None:
    first, second = send(sandbox), send(sandbox)
    for response in (first, second):
        assert response.status_code == 202
        body = response.json()
        assert set(body) == {"code", "message", "data", "error"}
        assert body["code"] == "WA202"
        assert body["message"] == "Request Accepted"
        assert body["error"] == {}
        assert body["data"]["message_id"].startswith("SBX")
    assert first.json()["data"]["message_id"] != second.json()["data"]["message_id"]
    assert sandbox.stats()["accepted"] == {RECIPIENT: 2}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(body_with("messaging_object.recipient_type", ...), id="no-recipient-type"),
        pytest.param(body_with("extra_info", ...), id="no-extra-info"),
        pytest.param(body_with("extra_info", {}), id="empty-extra-info"),
        pytest.param(
            body_with("messaging_object.sticker", {"link": "https://example.com/s.webp"}),
            id="https-link",
        ),
        pytest.param(
            body_with("messaging_object.sticker", {"id": "798123", "link": ""}),
            id="id-with-empty-link-as-in-kaleyra-sample",
        ),
        pytest.param(to("+919812345678,+14155550123"), id="comma-separated-to"),
        pytest.param(to("+919812345678 "), id="to-with-trailing-space-as-in-kaleyra-sample"),
    ],
)
def test_valid_variants_are_accepted(sandbox: SandboxServer, body: dict[str, Any]) -> None:
    assert send(sandbox, body).status_code == 202


def test_literal_plus_and_percent_encoded_plus_in_path_are_the_same_sender(
    sandbox: SandboxServer,
) -> None:
    literal = httpx.post(
        f"{sandbox.url}/v2/{SID}/whatsapp/{SENDER}/messages",
        json=VALID_BODY,
        headers={"api-key": KEY},
    )
    encoded = httpx.post(
        f"{sandbox.url}/v2/{SID}/whatsapp/%2B919000000001/messages",
        json=VALID_BODY,
        headers={"api-key": KEY},
    )
    assert literal.status_code == encoded.status_code == 202
    assert [entry["sender"] for entry in sandbox.requests()] == [SENDER, SENDER]


def test_charset_utf8_suffix_is_accepted(sandbox: SandboxServer) -> None:
    response = httpx.post(
        send_url(sandbox),
        content=json.dumps(VALID_BODY).encode(),
        headers={"api-key": KEY, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 202


# --- the send endpoint: refusals, in Kaleyra's order -------------------------------------


@pytest.mark.parametrize(
    ("api_key", "sid"),
    [("wrong-key", SID), (None, SID), ("", SID), (KEY, "HXAP16XXXXXX00XX")],
    ids=["wrong-key", "missing-key", "empty-key", "wrong-sid"],
)
def test_bad_key_or_sid_is_rbc001(sandbox: SandboxServer, api_key: str | None, sid: str) -> None:
    assert_contract_error(send(sandbox, api_key=api_key, sid=sid), "RBC001")


def test_unknown_sender_is_wa401(sandbox: SandboxServer) -> None:
    assert_contract_error(send(sandbox, sender="+919000000002"), "WA401")


def test_key_is_checked_before_sender_and_sender_before_payload(sandbox: SandboxServer) -> None:
    assert_contract_error(send(sandbox, {}, sender="+919000000002", api_key="x"), "RBC001")
    assert_contract_error(send(sandbox, {}, sender="+919000000002"), "WA401")


@pytest.mark.parametrize(
    "headers",
    [{"Content-Type": "text/plain"}, {}, {"Content-Type": "application/json; charset=latin-1"}],
    ids=["text-plain", "no-content-type", "latin-1-charset"],
)
def test_wrong_content_type_is_wa400(sandbox: SandboxServer, headers: dict[str, str]) -> None:
    response = httpx.post(
        send_url(sandbox),
        content=json.dumps(VALID_BODY).encode(),
        headers={"api-key": KEY, **headers},
    )
    assert_contract_error(response, "WA400")


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1, 2]", b'"text"', b""], ids=["garbage", "array", "string", "empty"]
)
def test_body_that_is_not_a_json_object_is_wa400(sandbox: SandboxServer, raw: bytes) -> None:
    response = httpx.post(
        send_url(sandbox), content=raw, headers={"api-key": KEY, "Content-Type": "application/json"}
    )
    assert_contract_error(response, "WA400")
    assert sandbox.requests()[0]["body"] == (None if raw in (b"not json", b"") else json.loads(raw))


BAD_PAYLOADS = {
    "no-messaging-object": body_with("messaging_object", ...),
    "messaging-object-not-object": body_with("messaging_object", "x"),
    "no-messaging-product": body_with("messaging_object.messaging_product", ...),
    "messaging-product-sms": body_with("messaging_object.messaging_product", "sms"),
    "recipient-type-group": body_with("messaging_object.recipient_type", "group"),
    "recipient-type-null": body_with("messaging_object.recipient_type", None),
    "no-to": body_with("messaging_object.to", ...),
    "to-without-plus": to("919812345678"),
    "to-leading-zero": to("+0919812345678"),
    "to-too-short": to("+91981"),
    "to-with-letters": to("+91981234567x"),
    "to-number-not-string": to(919812345678),  # type: ignore[arg-type]
    "to-list-with-bad-number": to("+919812345678,12345"),
    "no-type": body_with("messaging_object.type", ...),
    "type-image": body_with("messaging_object.type", "image"),
    "no-sticker": body_with("messaging_object.sticker", ...),
    "sticker-not-object": body_with("messaging_object.sticker", "798123"),
    "sticker-empty": body_with("messaging_object.sticker", {}),
    "sticker-empty-id": body_with("messaging_object.sticker", {"id": ""}),
    "sticker-id-and-link": body_with(
        "messaging_object.sticker", {"id": "798123", "link": "https://example.com/s.webp"}
    ),
    "sticker-http-link": body_with(
        "messaging_object.sticker", {"link": "http://example.com/s.webp"}
    ),
    "sticker-link-not-url": body_with("messaging_object.sticker", {"link": "s.webp"}),
    "sticker-id-number": body_with("messaging_object.sticker", {"id": 798123}),
    "extra-info-string": body_with("extra_info", "customer1"),
    "ref-number": body_with("extra_info.ref", 5),
    "ref1-null": body_with("extra_info.ref1", None),
    "ref2-list": body_with("extra_info.ref2", ["a"]),
}


@pytest.mark.parametrize("body", list(BAD_PAYLOADS.values()), ids=list(BAD_PAYLOADS))
def test_each_bad_payload_field_is_wa400(sandbox: SandboxServer, body: dict[str, Any]) -> None:
    assert_contract_error(send(sandbox, body), "WA400")
    assert sandbox.stats() == {
        "requests": 1,
        "accepted_total": 0,
        "accepted": {},
        "by_code": {"WA400": 1},
    }


def test_refs_are_truncated_and_unknown_wa_source_becomes_api(sandbox: SandboxServer) -> None:
    body = body_with("extra_info", {"ref": "r" * 300, "ref1": "m", "wa_source": "myshop"})
    assert send(sandbox, body).status_code == 202
    [accepted] = sandbox.accepted()
    assert accepted["ref"] == "r" * 255
    assert (accepted["ref1"], accepted["ref2"], accepted["wa_source"]) == ("m", None, "api")


# --- balance, random WA500s, latency ----------------------------------------------------


def test_balance_spent_answers_e110_until_raised(sandbox: SandboxServer) -> None:
    sandbox.configure(balance=2)
    assert [send(sandbox).status_code for _ in range(2)] == [202, 202]
    assert_contract_error(send(sandbox), "E110")
    assert_contract_error(send(sandbox, to("+14155550123")), "E110")
    assert sandbox.stats()["accepted_total"] == 2
    sandbox.configure(balance=None)
    assert send(sandbox).status_code == 202


def test_balance_comes_before_scripted_outcomes(sandbox: SandboxServer) -> None:
    sandbox.configure(balance=0)
    sandbox.script({RECIPIENT: ["WA500"]})
    assert_contract_error(send(sandbox), "E110")
    sandbox.configure(balance=None)
    assert_contract_error(send(sandbox), "WA500")  # the script was not consumed


def test_wa500_rate_one_answers_every_send_wa500(sandbox: SandboxServer) -> None:
    sandbox.configure(wa500_rate=1.0)
    for _ in range(3):
        assert_contract_error(send(sandbox), "WA500")
    assert sandbox.stats()["by_code"] == {"WA500": 3}


def test_seeded_wa500s_repeat_after_reset(sandbox: SandboxServer) -> None:
    sandbox.configure(wa500_rate=0.5, seed=7)
    first = [send(sandbox).status_code for _ in range(20)]
    sandbox.reset()
    second = [send(sandbox).status_code for _ in range(20)]
    assert first == second
    assert set(first) == {202, 500}


def test_latency_delays_answers_without_blocking_other_sends(sandbox: SandboxServer) -> None:
    sandbox.configure(latency_ms=200)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(headers={"api-key": KEY}) as client:
            responses = await asyncio.gather(
                *(client.post(send_url(sandbox), json=VALID_BODY) for _ in range(20))
            )
        return [response.status_code for response in responses]

    started = time.perf_counter()
    statuses = asyncio.run(burst())
    elapsed = time.perf_counter() - started
    assert statuses == [202] * 20
    assert 0.2 <= elapsed < 2.0  # 20 sends one after another would take 4 s


def test_latency_applies_to_refusals_too(sandbox: SandboxServer) -> None:
    sandbox.configure(latency_ms=150)
    started = time.perf_counter()
    assert_contract_error(send(sandbox, api_key="wrong"), "RBC001")
    assert time.perf_counter() - started >= 0.15


# --- scripted outcomes ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONTRACT_ERRORS))
def test_scripted_error_outcome_has_the_contract_body(sandbox: SandboxServer, name: str) -> None:
    sandbox.script({RECIPIENT: [name]})
    assert_contract_error(send(sandbox), name)
    assert sandbox.stats()["accepted_total"] == 0


def test_scripted_outcomes_are_consumed_in_order_then_default(sandbox: SandboxServer) -> None:
    sandbox.script({RECIPIENT: ["WA500", "WA200"]})
    sandbox.script({RECIPIENT: ["E110"]})  # appended to the same queue
    other = send(sandbox, to("+14155550123"))
    codes = [send(sandbox).json()["code"] for _ in range(4)]
    assert other.status_code == 202
    assert codes == ["WA500", "WA200", "E110", "WA202"]


def test_scripted_wa200_is_accepted_with_a_message_id(sandbox: SandboxServer) -> None:
    sandbox.script({RECIPIENT: ["WA200"]})
    response = send(sandbox)
    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["error"]) == ("WA200", {})
    assert body["data"]["message_id"]
    assert sandbox.accepted()[0]["message_id"] == body["data"]["message_id"]


def test_ambiguous_answers_are_not_counted_as_accepted(sandbox: SandboxServer) -> None:
    sandbox.script({RECIPIENT: ["NO_MESSAGE_ID", "UNKNOWN_CODE"]})
    no_id, unknown = send(sandbox), send(sandbox)
    assert no_id.status_code == 202
    assert no_id.json() == {"code": "WA202", "message": "Request Accepted", "data": {}, "error": {}}
    assert unknown.status_code == 200
    assert unknown.json()["code"] == "WA999"
    assert unknown.json()["data"] == {}
    assert sandbox.stats()["accepted_total"] == 0


def test_scripted_html_502_is_an_html_page(sandbox: SandboxServer) -> None:
    sandbox.script({RECIPIENT: ["HTML_502"]})
    response = send(sandbox)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == "<html><body>Bad Gateway</body></html>"
    assert sandbox.stats()["by_code"] == {"HTML_502": 1}


def test_scripted_drop_closes_the_connection_without_an_answer(sandbox: SandboxServer) -> None:
    sandbox.script({RECIPIENT: ["DROP"]})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        send(sandbox)
    [entry] = sandbox.requests()
    assert (entry["outcome"], entry["http_status"], entry["message_id"]) == ("DROP", None, None)
    assert entry["body"] == VALID_BODY  # the request was read whole
    assert sandbox.stats()["accepted_total"] == 0
    assert send(sandbox).status_code == 202  # and the server carries on


def test_scripted_timeout_not_answered_in_time_is_not_accepted(sandbox: SandboxServer) -> None:
    sandbox.script({RECIPIENT: ["TIMEOUT"]})
    with pytest.raises(httpx.ReadTimeout):
        send(sandbox, timeout=httpx.Timeout(5.0, read=0.2))
    assert sandbox.stats()["requests"] == 1  # logged on arrival, while still stalling
    time.sleep(0.6)  # past timeout_seconds: the late answer found the client gone
    [entry] = sandbox.requests()
    assert (entry["outcome"], entry["http_status"], entry["message_id"]) == ("TIMEOUT", None, None)
    assert sandbox.stats()["accepted_total"] == 0


def test_scripted_timeout_waited_out_is_accepted(sandbox: SandboxServer) -> None:
    sandbox.script({RECIPIENT: ["TIMEOUT"]})
    started = time.perf_counter()
    response = send(sandbox, timeout=5.0)
    assert time.perf_counter() - started >= 0.5
    assert response.status_code == 202
    assert sandbox.accepted()[0]["message_id"] == response.json()["data"]["message_id"]


def test_invalid_request_does_not_consume_the_script(sandbox: SandboxServer) -> None:
    sandbox.script({RECIPIENT: ["WA500"]})
    assert_contract_error(send(sandbox, body_with("messaging_object.type", "text")), "WA400")
    assert_contract_error(send(sandbox), "WA500")


def test_script_with_unknown_outcome_is_refused_whole(sandbox: SandboxServer) -> None:
    response = httpx.post(
        f"{sandbox.url}/_sandbox/script", json={RECIPIENT: ["WA500"], "+14155550123": ["NOPE"]}
    )
    assert response.status_code == 400
    assert "NOPE" in response.json()["error"]
    with pytest.raises(SandboxControlError, match="NOPE"):
        sandbox.script({RECIPIENT: ["NOPE"]})
    assert send(sandbox).status_code == 202  # nothing was queued


# --- bookkeeping and control endpoints ---------------------------------------------------


def test_request_log_masks_the_api_key(sandbox: SandboxServer) -> None:
    sandbox.configure(api_key=SECRET_KEY)
    before = time.time()
    send(sandbox, api_key=SECRET_KEY)
    send(sandbox, api_key="wrong")
    good, bad = sandbox.requests()
    assert before <= good["at"] <= bad["at"] <= time.time()
    assert good["headers"]["api-key"] == bad["headers"]["api-key"] == "***"
    assert (good["headers"]["api_key_valid"], bad["headers"]["api_key_valid"]) == (True, False)
    assert (good["sender"], good["sid"], good["recipient"]) == (SENDER, SID, RECIPIENT)
    assert (good["http_status"], good["code"], bad["code"]) == (202, "WA202", "RBC001")
    assert good["body"] == VALID_BODY
    for path in ("requests", "accepted", "stats", "config"):
        assert SECRET_KEY not in httpx.get(f"{sandbox.url}/_sandbox/{path}").text
    assert SECRET_KEY not in repr(sandbox.config)


def test_accepted_lists_each_accepted_send(sandbox: SandboxServer) -> None:
    message_id = send(sandbox).json()["data"]["message_id"]
    send(sandbox, api_key="wrong")
    assert sandbox.accepted() == [
        {
            "at": sandbox.requests()[0]["at"],
            "recipient": RECIPIENT,
            "sender": SENDER,
            "message_id": message_id,
            "ref": "customer1",
            "ref1": "marketing",
            "ref2": "dictionary",
            "wa_source": "api",
        }
    ]


def test_stats_count_requests_acceptances_and_codes(sandbox: SandboxServer) -> None:
    sandbox.script({RECIPIENT: ["WA500"]})
    send(sandbox)
    send(sandbox)
    send(sandbox, to("+14155550123"))
    send(sandbox, sender="+919000000002")
    assert sandbox.stats() == {
        "requests": 4,
        "accepted_total": 2,
        "accepted": {RECIPIENT: 1, "+14155550123": 1},
        "by_code": {"WA500": 1, "WA202": 2, "WA401": 1},
    }


def test_reset_clears_logs_counters_and_scripts(sandbox: SandboxServer) -> None:
    sandbox.script({RECIPIENT: ["WA500"], "+14155550123": ["DROP"]})
    send(sandbox)
    sandbox.reset()
    assert sandbox.stats() == {"requests": 0, "accepted_total": 0, "accepted": {}, "by_code": {}}
    assert sandbox.accepted() == sandbox.requests() == []
    assert send(sandbox).status_code == 202
    assert send(sandbox, to("+14155550123")).status_code == 202


def test_config_changes_senders_key_and_sid_at_run_time(sandbox: SandboxServer) -> None:
    sandbox.configure(senders={"+919000000002"}, api_key="new-key", sid="HXAP16NEW")
    assert_contract_error(send(sandbox), "RBC001")
    assert_contract_error(send(sandbox, api_key="new-key", sid="HXAP16NEW"), "WA401")
    response = send(sandbox, api_key="new-key", sid="HXAP16NEW", sender="+919000000002")
    assert response.status_code == 202
    view = httpx.get(f"{sandbox.url}/_sandbox/config").json()
    assert view["senders"] == ["+919000000002"]
    assert view["api_key"] == "***"


@pytest.mark.parametrize(
    "changes",
    [
        {"colour": "red"},
        {"latency_ms": -1},
        {"latency_ms": "fast"},
        {"wa500_rate": 1.5},
        {"balance": 2.5},
        {"senders": "+919000000001"},
        {"api_key": ""},
    ],
    ids=["unknown-field", "negative", "string", "rate-over-one", "float-balance", "str", "empty"],
)
def test_bad_config_changes_are_refused(sandbox: SandboxServer, changes: dict[str, Any]) -> None:
    response = httpx.post(f"{sandbox.url}/_sandbox/config", json=changes)
    assert response.status_code == 400
    assert response.json()["error"]
    with pytest.raises(SandboxConfigError):
        sandbox.configure(**changes)
    assert send(sandbox).status_code == 202  # the config is unchanged


def test_every_response_is_valid_json_with_a_json_content_type(sandbox: SandboxServer) -> None:
    sandbox.script({RECIPIENT: [*CONTRACT_ERRORS, "WA202", "WA200", "NO_MESSAGE_ID"]})
    for _ in range(len(CONTRACT_ERRORS) + 3):
        response = send(sandbox)
        assert response.headers["content-type"].startswith("application/json")
        assert set(json.loads(response.content)) == {"code", "message", "data", "error"}


def test_server_on_a_busy_port_fails_to_start_with_a_clear_error(sandbox: SandboxServer) -> None:
    with pytest.raises(SandboxControlError, match="could not listen"):
        SandboxServer(port=sandbox.port).start()


def test_stop_does_not_wait_for_a_stalled_timeout_answer() -> None:
    server = SandboxServer(SandboxConfig(timeout_seconds=60)).start()
    server.script({RECIPIENT: ["TIMEOUT"]})
    raised: list[Exception] = []

    def stalled_send() -> None:
        try:
            send(server, timeout=30.0)
        except httpx.HTTPError as exc:
            raised.append(exc)

    client = threading.Thread(target=stalled_send)
    client.start()
    while server.stats()["requests"] == 0:
        time.sleep(0.01)
    started = time.perf_counter()
    server.stop()
    client.join(timeout=5)
    assert time.perf_counter() - started < 5
    assert len(raised) == 1  # the client saw a disconnect, not an answer


def test_the_request_log_leaves_nothing_for_the_cyclic_gc_to_scan() -> None:
    """A full collection over a load test's log stalled the sandbox for 100+ ms, and the
    arrivals queued meanwhile were logged as one burst the senders never sent."""
    state = SandboxState(SandboxConfig())
    entries = [
        state.log_request(
            {
                "at": 1.0,
                "sender": "+919000000001",
                "recipient": f"+9198123{n:05d}",
                "body": json.loads(json.dumps(VALID_BODY)),
                "headers": {"api-key": "***", "content-type": "application/json"},
            }
        )
        for n in range(3)
    ]
    state.record_answer(entries[0], outcome="WA202", http_status=202, code="WA202")
    gc.collect()
    assert not any(gc.is_tracked(entry) for entry in state.requests)
    assert state.request_log()[1]["body"] == VALID_BODY
