"""Kaleyra's incoming-message callbacks on a served API (uvicorn on a loopback port): stored
in the window ledger once answered 200, by POST or GET; refused whole with a 4xx that names
the field; nothing of the message's content kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, text

from stickerq.api import create_app
from stickerq.api.served import ServedApi
from stickerq.db import open_sessions
from stickerq.models import CustomerWindow, utcnow
from stickerq.settings import Settings
from tests.api.test_callbacks import URL, settings_for

INCOMING = URL + "/incoming"
CUSTOMER, BUSINESS = "919876543210", "919000000001"


def kaleyra_body(at: float, **changes: object) -> dict[str, object]:
    """What a callback profile's template sends, content and all."""
    body: dict[str, object] = {
        "body": "hello, do you have the red one?",
        "mime_type": "",
        "media_url": "",
        "from": CUSTOMER,
        "name": "Asha",
        "type": "text",
        "created_at": str(int(at)),
        "reply_to": "",
        "wanumber": BUSINESS,
        "mobile": CUSTOMER,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def ledger(database_url: str) -> list[tuple[str, str, datetime, str | None]]:
    with open_sessions(database_url) as sessions, sessions() as session:
        rows = session.execute(
            select(
                CustomerWindow.sender,
                CustomerWindow.customer,
                CustomerWindow.last_inbound_at,
                CustomerWindow.last_type,
            ).order_by(CustomerWindow.customer)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


@pytest.fixture
def api(database_url: str, redis_prefix: str) -> tuple[Settings, str]:
    settings = settings_for(database_url, redis_prefix)
    with ServedApi(create_app(settings)) as served:
        yield settings, served.url


def test_a_post_and_a_get_are_stored_as_the_latest_inbound_time_of_their_pair(
    api: tuple[Settings, str],
) -> None:
    settings, url = api
    an_hour_ago = (utcnow() - timedelta(hours=1)).timestamp()
    answer = httpx.post(url + INCOMING, json=kaleyra_body(an_hour_ago))
    assert answer.status_code == 200, answer.text
    [(sender, customer, at, kind)] = ledger(settings.database_url)
    assert (sender, customer, kind) == ("+" + BUSINESS, "+" + CUSTOMER, "text")
    assert at == datetime.fromtimestamp(int(an_hour_ago), UTC)

    # An older message arriving late changes nothing; a newer one by GET moves the time on.
    older = kaleyra_body(an_hour_ago - 600, type="image")
    assert httpx.post(url + INCOMING, json=older).status_code == 200
    assert ledger(settings.database_url)[0][2] == at
    newer = kaleyra_body(an_hour_ago + 60, type="sticker")
    assert httpx.get(url + INCOMING, params=newer).status_code == 200
    [(_, _, at, kind)] = ledger(settings.database_url)
    assert (at, kind) == (datetime.fromtimestamp(int(an_hour_ago + 60), UTC), "sticker")


def test_the_message_content_is_stored_nowhere(api: tuple[Settings, str]) -> None:
    settings, url = api
    assert httpx.post(url + INCOMING, json=kaleyra_body(utcnow().timestamp())).status_code == 200
    with open_sessions(settings.database_url) as sessions, sessions() as session:
        tables = [name for (name,) in session.execute(select(CustomerWindow.__table__.c.sender))]
        assert tables
        for table in ("customer_windows", "unknown_callbacks", "messages"):
            for row in session.execute(text(f"SELECT * FROM {table}")):
                assert not any("red one" in str(v) or "Asha" in str(v) for v in row)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"from": None}, "from"),
        ({"wanumber": ""}, "wanumber"),
        ({"created_at": None}, "created_at"),
        ({"type": None}, "type"),
        ({"from": "not-a-number"}, "from"),
        ({"created_at": "yesterday"}, "created_at"),
    ],
)
def test_a_callback_missing_or_garbling_a_field_is_refused_naming_it(
    api: tuple[Settings, str], changes: dict[str, object], field: str
) -> None:
    settings, url = api
    answer = httpx.post(url + INCOMING, json=kaleyra_body(utcnow().timestamp(), **changes))
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["invalid"][0]["field"] == field
    assert field in problem["detail"]
    assert ledger(settings.database_url) == []


def test_a_list_is_taken_whole_or_not_at_all(api: tuple[Settings, str]) -> None:
    settings, url = api
    now = utcnow().timestamp()
    good = kaleyra_body(now)
    bad = kaleyra_body(now, wanumber=None)
    answer = httpx.post(url + INCOMING, json=[good, bad])
    assert answer.status_code == 422
    assert [item["index"] for item in answer.json()["invalid"]] == [1]
    assert ledger(settings.database_url) == []


def test_a_time_in_the_future_is_recorded_as_the_time_received(api: tuple[Settings, str]) -> None:
    settings, url = api
    before = utcnow()
    future = (before + timedelta(days=3)).timestamp()
    assert httpx.post(url + INCOMING, json=kaleyra_body(future)).status_code == 200
    [(_, _, at, _)] = ledger(settings.database_url)
    assert before - timedelta(seconds=1) <= at <= utcnow()


def test_the_wrong_secret_or_missing_basic_auth_is_refused(
    database_url: str, redis_prefix: str
) -> None:
    settings = settings_for(database_url, redis_prefix, callback_basic_auth="kaleyra:pw")
    body = kaleyra_body(utcnow().timestamp())
    with ServedApi(create_app(settings)) as served:
        wrong = served.url + "/callbacks/kaleyra/not-the-secret-at-all/incoming"
        assert httpx.post(wrong, json=body).status_code == 404
        assert httpx.get(wrong, params=body).status_code == 404
        assert httpx.post(served.url + INCOMING, json=body).status_code == 401
        answer = httpx.post(served.url + INCOMING, json=body, auth=("kaleyra", "pw"))
        assert answer.status_code == 200
        too_big = httpx.post(
            served.url + INCOMING,
            content=b"[" + b" " * (1 << 20) + b"]",
            auth=("kaleyra", "pw"),
            headers={"content-type": "application/json"},
        )
        assert too_big.status_code == 413
    assert len(ledger(settings.database_url)) == 1
