"""/windows over a real database (SQLite and PostgreSQL): a CSV body imported whole or not
at all (its bad cells in the problem with line and column), a customer's windows, the
counts per business number; a token for each, a read-write one to import."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from stickerq.db import open_sessions
from stickerq.models import Campaign, CustomerWindow, Message
from stickerq.producer.views.windows import (
    CustomerWindowsView,
    WindowImportView,
    WindowStatsView,
)
from tests.api.conftest import BAD_AUTH, READ, WRITE, count

A, B = "+919812345678", "+919812345679"
S1, S2 = "+919000000001", "+919000000002"
CSV = {**WRITE, "Content-Type": "text/csv"}


def imported(client: TestClient) -> dict:
    """A wrote to S1 an hour ago and to S2 two days ago; B to S1 23.5 hours ago."""
    now = int(time.time())
    body = (
        "from,wanumber,created_at,type\n"
        f"{A.removeprefix('+')},{S1.removeprefix('+')},{now - 3600},text\n"
        f"{A},{S2},{now - 2 * 86400},image\n"
        f"{B},{S1},{now - 84600},\n"
    )
    answer = client.post("/windows/import", content=body.encode(), headers=CSV)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_import_show_and_stats(client: TestClient) -> None:
    result = imported(client)
    WindowImportView.model_validate(result)
    assert (result["rows"], result["pairs"], result["customers"], result["senders"]) == (3, 3, 2, 2)

    shown = client.get(f"/windows/{A}", headers=READ)
    assert shown.status_code == 200, shown.text
    view = CustomerWindowsView.model_validate(shown.json())
    assert view.customer == "+91******5678"  # masked by default
    assert [(w.sender, w.open, w.last_type) for w in view.windows] == [
        (S1, True, "text"),
        (S2, False, "image"),
    ]
    one = client.get(f"/windows/{A}", params={"from": S2, "show_numbers": True}, headers=READ)
    assert one.json()["customer"] == A and [w["sender"] for w in one.json()["windows"]] == [S2]
    nobody = client.get("/windows/+919812340000", headers=READ).json()
    assert nobody["windows"] == []

    stats = WindowStatsView.model_validate(client.get("/windows/stats", headers=READ).json())
    assert [(s.sender, s.open_now, s.closing_within_hour) for s in stats.senders] == [
        (S1, 2, 1),
        (S2, 0, 0),
    ]
    of_s2 = client.get("/windows/stats", params={"from": S2}, headers=READ).json()
    assert [s["sender"] for s in of_s2["senders"]] == [S2]


def test_a_csv_with_bad_rows_is_a_422_listing_them_and_nothing_is_stored(
    client: TestClient,
) -> None:
    body = f"from,wanumber,created_at\n{A},{S1},1733580000\n123,{S1},yesterday\n"
    answer = client.post("/windows/import", content=body.encode(), headers=CSV)

    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert (problem["code"], problem["bad_rows"]) == ("invalid_window_import", 1)
    assert [(p["line"], p["column"]) for p in problem["invalid"]] == [
        (3, "from"),
        (3, "created_at"),
    ]
    assert "the CSV body" in problem["detail"] and "/tmp" not in answer.text
    assert count(client.database_url, CustomerWindow) == 0  # type: ignore[attr-defined]

    unusable = client.post("/windows/import", content=b"phone\n1\n", headers=CSV)
    assert unusable.status_code == 422
    assert "no 'from', 'wanumber' or 'created_at' column" in unusable.json()["detail"]


def test_bad_numbers_in_the_path_or_query_are_a_422(client: TestClient) -> None:
    for path, params in (("/windows/12", {}), ("/windows/stats", {"from": "abc"})):
        answer = client.get(path, params=params, headers=READ)
        assert (answer.status_code, answer.json()["code"]) == (422, "invalid_window_query")


@pytest.mark.parametrize("headers", BAD_AUTH)
def test_every_route_needs_a_token(client: TestClient, headers: dict) -> None:
    for method, path in (
        ("get", "/windows/stats"),
        ("get", f"/windows/{A}"),
        ("post", "/windows/import"),
    ):
        answer = client.request(method, path, headers=headers, content=b"from\n")
        assert answer.status_code == 401, (method, path)


def test_a_read_only_token_may_read_but_not_import(client: TestClient) -> None:
    body = f"from,wanumber,created_at\n{A},{S1},1733580000\n".encode()
    refused = client.post(
        "/windows/import", content=body, headers={**READ, "Content-Type": "text/csv"}
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    assert count(client.database_url, CustomerWindow) == 0  # type: ignore[attr-defined]
    assert client.get("/windows/stats", headers=READ).status_code == 200


def test_a_campaign_to_the_window_audience_over_http(client: TestClient) -> None:
    """`send --to-window` as JSON: no recipients, the sender's customers of the last 24 h
    (or window_since); sent in-window; any wrong mix is a 422 and stores nothing."""
    imported(client)
    made = client.post(
        "/campaigns", json={"sticker_id": "media-1", "sender": S1, "to_window": True}, headers=WRITE
    )
    assert made.status_code == 201, made.text
    assert made.json()["recipients"] == 2  # A an hour ago, B 23.5 hours ago
    with open_sessions(client.database_url) as sessions, sessions() as session:  # type: ignore[attr-defined]
        campaign = session.get(Campaign, made.json()["campaign_id"])
        assert campaign is not None and campaign.in_window
        phones = session.scalars(select(Message.recipient).order_by(Message.recipient)).all()
    assert phones == [A, B]

    wide = {"sticker_id": "media-1", "sender": S2, "to_window": True, "window_since": "3d"}
    assert client.post("/campaigns", json=wide, headers=WRITE).json()["recipients"] == 1

    for body, says in (
        ({"sender": S1, "to_window": True, "recipients": [A]}, "give only one"),
        ({"sender": S1, "window_since": "2d", "recipients": [A]}, "--since goes with"),
        ({"sender": S1, "to_window": True, "window_since": "soon"}, "--since"),
        ({"sender": S1}, "give recipients, or to_window"),
    ):
        refused = client.post("/campaigns", json={"sticker_id": "media-1", **body}, headers=WRITE)
        assert refused.status_code == 422, (body, refused.text)
        assert says in refused.text, (body, refused.json())
    assert count(client.database_url, Campaign) == 2  # type: ignore[attr-defined]
