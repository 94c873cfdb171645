"""POST /callbacks/kaleyra/{secret} with bodies no callback should have, on a real database
(SQLite and PostgreSQL): never a 500, a 4xx (not a 503) for what can never be stored, counted
by reason on /metrics, and a request taken whole or not at all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stickerq.models import UnknownCallback
from stickerq.producer import callback_payloads
from stickerq.states import MessageStatus
from tests.api.conftest import count
from tests.api.test_callbacks import URL, callbacks_client, counted, message, sent_messages
from tests.producer.test_callbacks import callback

JSON = {"content-type": "application/json"}
DEEP = 500  # levels of nesting that json reads (its limit is near 1,000)
FORM = {"content-type": "application/x-www-form-urlencoded"}
MULTIPART = {"content-type": "multipart/form-data; boundary=x"}


@pytest.fixture
def client(database_url: str, redis_prefix: str) -> Iterator[TestClient]:
    yield from callbacks_client(database_url, redis_prefix)


def refused(client: TestClient, reason: str) -> float:
    return counted(client, "stickerq_callbacks_refused", reason)


def post_raw(client: TestClient, body: bytes, **headers: str) -> Any:
    return client.post(URL, content=body, headers={**JSON, **headers})


def test_a_body_nested_100000_deep_is_a_400_not_a_500(client: TestClient) -> None:
    before = refused(client, "invalid_json")
    for body in (b"[" * 100_000, b'{"a":' * 100_000, b"[" * 100_000 + b"]" * 100_000):
        answer = post_raw(client, body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "invalid_json"
        assert "nested too deep" in answer.json()["detail"]
    assert refused(client, "invalid_json") == before + 3


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"\xff\xfe\x00garbage", {}, 400, "invalid_json"),  # not UTF-8
        (b"message_id=M0&status=read", FORM, 400, "invalid_json"),
        (
            b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n",
            MULTIPART,
            400,
            "invalid_json",
        ),
        (b'{"message_id": "M0", "status": "read"', {}, 400, "invalid_json"),  # cut short
        (b"", {}, 400, "invalid_json"),
        (b'{"message_id": ' + b"9" * 5000 + b"}", {}, 400, "invalid_json"),  # int too long
        (b'{"message_id": ["M0"], "status": "read"}', {}, 422, "invalid_callback"),
        (b'{"message_id": true, "status": "read"}', {}, 422, "invalid_callback"),
        (b'{"message_id": "M0", "status": {"a": 1}}', {}, 422, "invalid_callback"),
        (
            b'{"message_id": "M0", "status": ' + b"[" * DEEP + b"]" * DEEP + b"}",
            {},
            422,
            "invalid_callback",
        ),
        (b'[{"message_id": "M0", "status": "read"}, 7]', {}, 422, "invalid_callback"),
        (b"[" + b",".join([b"{}"] * 1001) + b"]", {}, 422, "invalid_callback"),
    ],
)
def test_malformed_bodies_are_4xx_problems_never_5xx(
    client: TestClient, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    answer = post_raw(client, body, **headers)
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_odd_but_readable_fields_are_stored_not_refused(client: TestClient) -> None:
    """A ref given as a deep structure is ignored, a timestamp that is no time is the time
    received, NaN and infinities are no times: the callback itself is good."""
    database_url = client.database_url  # type: ignore[attr-defined]
    sent_messages(database_url)
    body = (
        b'{"message_id": "M0", "status": "delivered", "extra_info": {"ref": '
        + b"[" * DEEP
        + b"]" * DEEP
        + b', "ref1": {"a": 1}}, "meta_object": {"value": {"statuses": [{"timestamp": NaN}]}}}'
    )
    assert post_raw(client, body).status_code == 200
    for timestamp in ("Infinity", '"9' + "9" * 5000 + '"', "-1e300", "[1]"):
        payload = '{"message_id": "M1", "status": "delivered", "meta_object": {"value": '
        payload += f'{{"statuses": [{{"timestamp": {timestamp}}}]}}}}}}'
        assert post_raw(client, payload.encode()).status_code == 200, timestamp
    assert message(database_url, "M0").status == MessageStatus.DELIVERED
    assert message(database_url, "M1").status == MessageStatus.DELIVERED


# JSON values shaped like callbacks, with the characters that hurt: NUL, lone surrogates.
_alphabet = st.characters() | st.characters(categories=["Cs"]) | st.just("\x00")
_text = st.text(_alphabet, max_size=12) | st.sampled_from(
    ["M0", "read", "delivered", "failed", "\x00", "\ud800", "x" * 200, ""]
)
_scalars = st.none() | st.booleans() | st.integers() | st.floats() | _text
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_keys = st.sampled_from(["message_id", "status", "extra_info", "meta_object", "ref", "id"])
_callbacks = st.recursive(
    st.dictionaries(_keys, _json, max_size=5),
    lambda inner: st.dictionaries(_keys, inner | _json, max_size=4) | st.lists(inner, max_size=3),
    max_leaves=8,
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=_callbacks | _json)
def test_no_json_body_makes_a_5xx(client: TestClient, payload: Any) -> None:
    answer = post_raw(client, json.dumps(payload).encode())  # ensure_ascii: \ud800 escaped
    assert answer.status_code in (200, 400, 422), answer.text
    assert answer.status_code == 200 or answer.json()["code"] in {
        "invalid_json",
        "invalid_callback",
    }


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("message_id", "nul_byte"),
        ("extra_info.message_id", "nul_byte"),
        ("extra_info.ref", "nul_byte"),
        ("extra_info.ref2", "not_unicode"),
        ("message_id", "not_unicode"),
        ("meta_object.value.statuses[0].errors[0].title", "nul_byte"),
    ],
)
def test_text_no_database_can_store_is_a_422_counted_not_a_503(
    client: TestClient, where: str, reason: str
) -> None:
    database_url = client.database_url  # type: ignore[attr-defined]
    sent_messages(database_url)
    bad = "\x00" if reason == "nul_byte" else "\ud800"
    payload = callback("M0", "failed", errors=[{"code": 131026, "title": "Undeliverable"}])
    if where == "message_id":
        payload["message_id"] = f"M0{bad}"
    elif where == "extra_info.message_id":  # read only when there is none at the top
        del payload["message_id"]
        payload["extra_info"]["message_id"] = f"M0{bad}"
    elif where.startswith("extra_info."):
        payload["extra_info"][where.removeprefix("extra_info.")] = f"M0{bad}"
    else:
        payload["meta_object"]["value"]["statuses"][0]["errors"][0]["title"] = f"oops{bad}"
    before = refused(client, reason)
    answer = post_raw(client, json.dumps(payload).encode())
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "invalid_callback"
    assert problem["invalid"] == [{"index": 0, "field": where, "reason": problem["detail"]}]
    assert where in problem["detail"]
    assert refused(client, reason) == before + 1
    assert message(database_url, "M0").status == MessageStatus.SENT
    assert count(database_url, UnknownCallback) == 0


def test_an_over_long_message_id_is_a_422_counted(client: TestClient) -> None:
    before = refused(client, "too_long")
    answer = client.post(URL, json=callback("M" * 129, "delivered"))
    assert answer.status_code == 422, answer.text
    assert "129 characters long" in answer.json()["detail"]
    assert refused(client, "too_long") == before + 1
    assert count(client.database_url, UnknownCallback) == 0  # type: ignore[attr-defined]


def test_one_bad_callback_in_a_list_refuses_the_request_naming_its_index(
    client: TestClient,
) -> None:
    """Decided: a request is taken whole or not at all. Storing the good ones and answering
    200 would hide the bad one from the sender; a 422 listing it lets the sender fix it and
    send the request again, with nothing stored twice."""
    database_url = client.database_url  # type: ignore[attr-defined]
    sent_messages(database_url)
    batch = [callback(f"M{n % 3}", "delivered") for n in range(5)]
    batch[3]["extra_info"]["ref"] = "crm\x00"
    batch.append({"status": "read"})  # index 5: no message_id
    nul, missing, beside = (
        refused(client, reason) for reason in ("nul_byte", "no_message_id", "beside_refused")
    )
    answer = client.post(URL, json=batch)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert [(row["index"], row["field"]) for row in problem["invalid"]] == [
        (3, "extra_info.ref"),
        (5, "message_id"),
    ]
    assert "2 of the 6 callbacks cannot be stored" in problem["detail"]
    assert all(message(database_url, f"M{n}").status == MessageStatus.SENT for n in range(3))
    assert refused(client, "nul_byte") == nul + 1
    assert refused(client, "no_message_id") == missing + 1
    assert refused(client, "beside_refused") == beside + 4
    batch[3]["extra_info"]["ref"] = "crm"  # fixed, and sent again without the other
    assert client.post(URL, json=batch[:5]).status_code == 200
    assert all(message(database_url, f"M{n}").status == MessageStatus.DELIVERED for n in range(3))


def test_a_value_the_database_refuses_is_a_422_naming_the_index_not_a_503(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database's refusal is the backstop for what parsing does not know of: with the
    text check turned off, a lone surrogate reaches the driver, which cannot encode it."""
    monkeypatch.setattr(callback_payloads, "storable", lambda value, where: value)
    database_url = client.database_url  # type: ignore[attr-defined]
    sent_messages(database_url)
    batch = [callback("M0", "read"), callback("M1", "read"), callback("NOT-OURS", "read")]
    batch[2]["extra_info"]["ref"] = "crm\ud800"
    before = refused(client, "database_refused"), refused(client, "beside_refused")
    answer = post_raw(client, json.dumps(batch).encode())
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "unstorable_callback"
    assert [row["index"] for row in problem["invalid"]] == [2]
    assert "UnicodeEncodeError" in problem["detail"]
    after = refused(client, "database_refused"), refused(client, "beside_refused")
    assert after == (before[0] + 1, before[1] + 2)
    assert message(database_url, "M0").status == MessageStatus.SENT  # nothing of it stored
    assert count(database_url, UnknownCallback) == 0
    assert client.post(URL, json=batch[:2]).status_code == 200  # the writer goes on
    assert message(database_url, "M1").status == MessageStatus.READ


def test_an_over_large_body_is_a_413_counted(client: TestClient) -> None:
    before = refused(client, "too_large")
    answer = post_raw(client, b'["' + b"x" * (1 << 20) + b'"]')
    assert (answer.status_code, answer.json()["code"]) == (413, "body_too_large")
    assert refused(client, "too_large") == before + 1


def test_a_wrong_secret_is_not_counted_as_a_refused_callback(client: TestClient) -> None:
    before = refused(client, "invalid_json")
    answer = client.post("/callbacks/kaleyra/wrong-secret", content=b"[" * 1000, headers=JSON)
    assert answer.status_code == 404
    assert refused(client, "invalid_json") == before
