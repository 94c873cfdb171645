"""The routes over messages, reports, exports, requeue and pauses, on SQLite and PostgreSQL:
each with good and bad input, and behind the token checks."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.masking import mask_phone
from stickerq.models import Campaign, Message, Pause, utcnow
from stickerq.producer.views.failures import HistoryView, RequeueView
from stickerq.producer.views.messages import MessagePageView
from stickerq.producer.views.reports import ReportView
from stickerq.states import CampaignStatus, MessageStatus, PauseScope
from tests.api.conftest import BAD_AUTH, READ, WRITE
from tests.conftest import SENDER
from tests.producer.test_failures import SID, add_campaign, add_message

NUMBERS = [f"+91981234{n:04d}" for n in range(7)]
P, F = MessageStatus.PARKED, MessageStatus.FAILED

# Every route this module covers, as (method, path, JSON body).
ROUTES = [
    ("get", "/campaigns/1/messages", None),
    ("get", "/messages/mid-1", None),
    ("get", "/campaigns/1/report", None),
    ("get", "/campaigns/1/export.csv", None),
    ("get", "/pauses", None),
    ("post", "/requeue", {"campaign_id": 1, "status": "parked"}),
    ("post", "/pauses/resume", {"sender": SENDER}),
]


@pytest.fixture
def campaign(sessions: sessionmaker[Session]) -> int:
    """A completed campaign: parked E110 x2, failed WA400, sent (mid-1, 2 attempts), read,
    and two more sent, in that order."""
    with sessions.begin() as session:
        made = add_campaign(session)
        add_message(session, made, NUMBERS[0], P, "E110", "low balance", ref="=HYPERLINK(1)")
        add_message(session, made, NUMBERS[1], P, "E110", "low balance")
        add_message(session, made, NUMBERS[2], F, "WA400", "bad payload")
        add_message(session, made, NUMBERS[3], MessageStatus.SENT, attempts=2, message_id="mid-1")
        add_message(session, made, NUMBERS[4], MessageStatus.READ, message_id="mid-2")
        for number in NUMBERS[5:]:
            add_message(session, made, number, MessageStatus.SENT)
        made.recipient_count = len(NUMBERS)
        return made.id


def test_messages_are_paged_by_an_opaque_cursor_that_inserts_do_not_shift(
    client: TestClient, campaign: int, sessions: sessionmaker[Session]
) -> None:
    path = f"/campaigns/{campaign}/messages"
    first = client.get(path, params={"limit": 3}, headers=READ)
    assert first.status_code == 200, first.text
    page = MessagePageView.model_validate(first.json())
    assert [m.recipient for m in page.messages] == [mask_phone(n) for n in NUMBERS[:3]]
    assert page.next_cursor and str(page.messages[-1].message_pk) not in page.next_cursor
    with sessions.begin() as session:  # a row stored meanwhile comes last, shifting nothing
        session.add(Message(campaign_id=campaign, recipient="+919812349999"))
    seen, cursor = [m.message_pk for m in page.messages], page.next_cursor
    while cursor:
        answer = client.get(path, params={"limit": 3, "cursor": cursor}, headers=READ).json()
        seen += [m["message_pk"] for m in answer["messages"]]
        cursor = answer["next_cursor"]
    assert len(seen) == len(set(seen)) == len(NUMBERS) + 1
    assert seen == sorted(seen)


def test_a_message_leaving_the_filter_between_pages_makes_none_skipped(
    client: TestClient, campaign: int, sessions: sessionmaker[Session]
) -> None:
    """An offset would skip the second parked message once the first is requeued; the
    cursor starts after the last pk seen."""
    path, params = f"/campaigns/{campaign}/messages", {"status": "parked", "limit": 1}
    first = client.get(path, params=params, headers=READ).json()
    with sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id == first["messages"][0]["message_pk"])
            .values(status=MessageStatus.PENDING)
        )
    second = client.get(path, params={**params, "cursor": first["next_cursor"]}, headers=READ)
    assert [m["recipient"] for m in second.json()["messages"]] == [mask_phone(NUMBERS[1])]


def test_messages_filter_by_status_and_code_and_show_numbers_on_request(
    client: TestClient, campaign: int
) -> None:
    path = f"/campaigns/{campaign}/messages"
    parked = client.get(path, params={"status": "parked", "code": "E110"}, headers=READ).json()
    assert [m["recipient"] for m in parked["messages"]] == [mask_phone(n) for n in NUMBERS[:2]]
    assert parked["next_cursor"] is None
    shown = client.get(path, params={"code": "WA400", "show_numbers": True}, headers=READ)
    assert [m["recipient"] for m in shown.json()["messages"]] == [NUMBERS[2]]
    assert shown.json()["messages"][0]["status"] == "failed"


@pytest.mark.parametrize(
    "params",
    [{"cursor": "not-ours"}, {"cursor": "bTE6LTE"}, {"status": "asleep"}, {"limit": 0}],
    ids=["foreign-cursor", "negative-pk-cursor", "bad-status", "zero-limit"],
)
def test_bad_message_filters_are_422_problems(
    client: TestClient, campaign: int, params: dict
) -> None:
    answer = client.get(f"/campaigns/{campaign}/messages", params=params, headers=READ)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "invalid_request"


def test_a_message_by_its_message_id_has_every_attempt(client: TestClient, campaign: int) -> None:
    answer = client.get("/messages/mid-1", headers=READ)
    assert answer.status_code == 200, answer.text
    (history,) = HistoryView.model_validate(answer.json()).messages
    assert (history.campaign_id, history.message_id, history.status) == (campaign, "mid-1", "sent")
    assert [a.number for a in history.attempts] == [1, 2]
    assert history.recipient == mask_phone(NUMBERS[3])
    missing = client.get("/messages/no-such-id", headers=READ)
    assert missing.status_code == 404
    assert missing.json()["code"] == "message_not_found"
    # a recipient is not a message_id here: numbers stay out of URLs and their logs
    assert client.get(f"/messages/{NUMBERS[3]}", headers=READ).status_code == 404


def test_report_is_the_clis_report_json_and_checks_its_options(
    client: TestClient, campaign: int
) -> None:
    answer = client.get(f"/campaigns/{campaign}/report", params={"by": "ref"}, headers=READ)
    assert answer.status_code == 200, answer.text
    report = ReportView.model_validate(answer.json())
    assert (report.recipients, report.succeeded, report.by_code) == (7, 4, {"E110": 2, "WA400": 1})
    assert report.breakdown is not None and report.breakdown.by == "ref"
    for params in ({"by": "ref3"}, {"top": 0}):
        bad = client.get(f"/campaigns/{campaign}/report", params=params, headers=READ)
        assert bad.status_code == 422
    missing = client.get("/campaigns/999/report", headers=READ)
    assert (missing.status_code, missing.json()["code"]) == (404, "campaign_not_found")


def test_export_streams_the_csv_with_formula_safe_cells(client: TestClient, campaign: int) -> None:
    with client.stream("GET", f"/campaigns/{campaign}/export.csv", headers=READ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        text = "".join(answer.iter_text())
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["recipient"] for row in rows] == ["'" + n for n in NUMBERS]
    assert rows[0]["ref"] == "'=HYPERLINK(1)"
    assert rows[3]["message_id"] == "mid-1"
    missing = client.get("/campaigns/999/export.csv", headers=READ)
    assert (missing.status_code, missing.json()["code"]) == (404, "campaign_not_found")


def test_requeue_counts_then_moves_the_chosen_messages(
    client: TestClient, campaign: int, sessions: sessionmaker[Session]
) -> None:
    body = {"campaign_id": campaign, "status": "parked", "code": "E110"}
    dry = client.post("/requeue", json={**body, "dry_run": True}, headers=WRITE)
    assert dry.status_code == 200, dry.text
    assert RequeueView.model_validate(dry.json()).requeued == 2
    done = RequeueView.model_validate(client.post("/requeue", json=body, headers=WRITE).json())
    assert (done.requeued, done.dry_run, done.campaign_status) == (2, False, "running")
    assert done.batches >= 1
    again = client.post("/requeue", json=body, headers=WRITE).json()
    assert again["requeued"] == 0
    pending = client.get(
        f"/campaigns/{campaign}/messages", params={"status": "pending"}, headers=READ
    ).json()
    assert len(pending["messages"]) == 2


def test_requeue_refusals_are_problems(
    client: TestClient, campaign: int, sessions: sessionmaker[Session]
) -> None:
    def post(**body: object) -> tuple[int, str]:
        answer = client.post("/requeue", json={"campaign_id": campaign, **body}, headers=WRITE)
        return answer.status_code, answer.json()["code"]

    assert post(status="sent") == (422, "invalid_request")
    assert post(status="parked", extra=1) == (422, "invalid_request")
    assert post(campaign_id=999, status="parked") == (404, "campaign_not_found")
    with sessions.begin() as session:
        session.add(Pause(scope=PauseScope.ACCOUNT, sid=SID, code="E110", reason="low balance"))
    assert post(status="parked") == (409, "requeue_refused")
    body = {"campaign_id": campaign, "status": "parked", "resume": True}
    resumed = client.post("/requeue", json=body, headers=WRITE)
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["pauses_lifted"], resumed.json()["requeued"]) == (1, 2)
    assert client.get("/pauses", headers=READ).json() == []


def test_pauses_are_listed_and_lifted_by_sender(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    assert client.get("/pauses", headers=READ).json() == []
    with sessions.begin() as session:
        session.add(
            Pause(scope=PauseScope.SENDER, sid=client.settings.kaleyra_sid,  # type: ignore[attr-defined]
                  sender=SENDER, code="WA401", reason="sender not on the account")
        )  # fmt: skip
    (listed,) = client.get("/pauses", headers=READ).json()
    assert (listed["scope"], listed["sender"], listed["code"]) == ("sender", SENDER, "WA401")
    lifted = client.post("/pauses/resume", json={"sender": SENDER}, headers=WRITE)
    assert lifted.status_code == 200, lifted.text
    assert lifted.json() == {"pauses_lifted": 1, "batches": 0}
    assert client.get("/pauses", headers=READ).json() == []
    for body in ({}, {"account": "SID", "sender": SENDER}, {"sid": "SID"}):
        bad = client.post("/pauses/resume", json=body, headers=WRITE)
        assert (bad.status_code, bad.json()["code"]) == (422, "invalid_request")


def test_campaign_details_give_rate_eta_and_the_pause_in_force(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        made = add_campaign(session, CampaignStatus.RUNNING)
        for number in NUMBERS[:4]:
            add_message(session, made, number, MessageStatus.SENT)
        for number in NUMBERS[4:]:
            add_message(session, made, number, MessageStatus.PENDING, attempts=0)
        made.recipient_count, made.started_at = len(NUMBERS), utcnow() - timedelta(seconds=8)
        campaign_id = made.id
    shown = client.get(f"/campaigns/{campaign_id}", headers=READ).json()
    assert shown["progress"]["by_status"] == {"sent": 4, "pending": 3}
    pace = shown["pace"]
    assert 0.4 < pace["rate_per_second"] <= 0.5 and pace["remaining"] == 3
    assert pace["eta_at"] is not None
    with sessions.begin() as session:
        session.add(Pause(scope=PauseScope.ACCOUNT, sid=SID, code="E110", reason="low balance"))
    held = client.get(f"/campaigns/{campaign_id}", headers=READ).json()
    assert held["progress"]["pause"]["code"] == "E110"
    assert held["pace"]["eta_at"] is None  # nothing goes until the pause is lifted
    with sessions.begin() as session:  # the account resumed, the campaign itself paused
        session.execute(update(Pause).values(resumed_at=utcnow()))
        session.execute(update(Campaign).values(status=CampaignStatus.PAUSED))
    assert client.get(f"/campaigns/{campaign_id}", headers=READ).json()["pace"]["eta_at"] is None


@pytest.mark.parametrize("headers", BAD_AUTH, ids=["none", "wrong", "no-scheme"])
def test_every_route_needs_a_valid_token(client: TestClient, headers: dict) -> None:
    for method, path, body in ROUTES:
        answer = client.request(method, path, headers=headers, json=body)
        assert (answer.status_code, answer.json()["code"]) == (401, "unauthorized"), path


def test_a_read_only_token_cannot_requeue_or_lift_a_pause(
    client: TestClient, campaign: int, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        session.add(Pause(scope=PauseScope.ACCOUNT, sid=SID, code="E110", reason="low balance"))
    for method, path, body in ROUTES:
        if method == "post":
            answer = client.post(path, json=body, headers=READ)
            assert (answer.status_code, answer.json()["code"]) == (403, "insufficient_scope"), path
    assert len(client.get("/pauses", headers=READ).json()) == 1


def test_a_nul_character_is_a_422_not_a_database_error(client: TestClient, campaign: int) -> None:
    """PostgreSQL refuses NUL in text: every field that reaches a query says so first."""
    for path, body in (
        ("/requeue", {"campaign_id": campaign, "status": "parked", "code": "E1\x0010"}),
        ("/pauses/resume", {"sender": "+91\x00"}),
        ("/pauses/resume", {"account": "SID\x00"}),
    ):
        answer = client.post(path, json=body, headers=WRITE)
        assert (answer.status_code, answer.json()["code"]) == (422, "invalid_request"), path
    for path, params in (
        (f"/campaigns/{campaign}/messages", {"code": "E1\x0010"}),
        (f"/campaigns/{campaign}/messages", {"cursor": "\x00"}),
        ("/messages/mid%00", {}),
    ):
        answer = client.get(path, params=params, headers=READ)
        assert answer.status_code == 422, path
