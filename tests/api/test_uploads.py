"""POST /campaigns as multipart: the recipients as a CSV file, the other fields beside it;
the same validation, 422 body and Idempotency-Key as JSON."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from stickerq.api import uploads
from stickerq.models import Campaign, IdempotencyKey
from tests.api.conftest import READ, WRITE, count

CSV = "phone,ref\n+919812345678,alice\n+919812345679,bob\n+919812345678,again\n"
FIELDS = {"sticker_id": "media-1", "name": "csv upload", "ref1": "crm"}


def post(client: TestClient, csv: str | bytes, headers: dict | None = None, **fields: str):
    content = csv.encode() if isinstance(csv, str) else csv
    files = {"recipients": ("audience.csv", content, "text/csv")}
    return client.post(
        "/campaigns",
        data={**FIELDS, **fields},
        files=files,
        headers=WRITE if headers is None else headers,
    )


def test_a_csv_upload_stores_its_rows_with_their_refs(client: TestClient) -> None:
    answer = post(client, CSV)
    assert answer.status_code == 201, answer.text
    view = answer.json()
    assert (view["name"], view["recipients"], view["ref1"]) == ("csv upload", 2, "crm")
    page = client.get(
        f"/campaigns/{view['campaign_id']}/messages", params={"show_numbers": True}, headers=READ
    ).json()
    assert [(m["recipient"], m["ref"]) for m in page["messages"]] == [
        ("+919812345678", "alice"),
        ("+919812345679", "bob"),
    ]


def test_invalid_rows_answer_the_same_422_as_json_with_csv_lines(client: TestClient) -> None:
    answer = post(client, "phone\n+919812345678\nnot-a-phone\n\n+91123\n")
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "invalid_recipients"
    assert [(row["line"], row["value"]) for row in problem["invalid"]] == [
        (3, "not-a-phone"),
        (5, "+91123"),
    ]
    assert all(row["reason"] for row in problem["invalid"])
    assert count(client.database_url, Campaign) == 0  # type: ignore[attr-defined]
    assert (
        post(client, "phone\nnot-a-phone\n+919812345678\n", skip_invalid="true").json()[
            "recipients"
        ]
        == 1
    )


def test_an_unusable_file_names_the_clients_file_not_our_temporary_one(
    client: TestClient,
) -> None:
    answer = post(client, "number\n+919812345678\n")
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "invalid_recipients_file"
    assert problem["detail"].startswith("audience.csv, line 1: no 'phone' column")
    assert tempfile.gettempdir() not in answer.text
    latin1 = post(client, "phone,ref\n+919812345678,caf\xe9\n".encode("latin-1"))
    assert (latin1.status_code, latin1.json()["code"]) == (422, "invalid_recipients_file")
    assert latin1.json()["detail"].startswith("audience.csv, line 2: the file is not UTF-8")


def test_form_fields_are_checked_like_the_json_body(client: TestClient) -> None:
    misspelt = post(client, CSV, sticker="x")
    assert misspelt.status_code == 422
    assert misspelt.json()["errors"][0]["location"] == "body.sticker"
    both = post(client, CSV, sticker_link="https://example.com/s.webp")
    assert (both.status_code, both.json()["code"]) == (422, "invalid_campaign")
    no_file = client.post("/campaigns", data=FIELDS, files={"other": ("a", b"x")}, headers=WRITE)
    assert no_file.status_code == 422
    assert no_file.json()["errors"][0]["location"] == "body.recipients"
    later = post(client, CSV, scheduled_at="2099-01-01T09:00", tz="Asia/Kolkata")
    assert later.status_code == 201, later.text
    assert later.json()["status"] == "scheduled"


def test_other_content_types_are_415(client: TestClient) -> None:
    answer = client.post(
        "/campaigns", content=b"phone\n", headers={**WRITE, "Content-Type": "text/csv"}
    )
    assert (answer.status_code, answer.json()["code"]) == (415, "unsupported_media_type")


def test_an_upload_retried_with_its_key_makes_one_campaign(client: TestClient) -> None:
    headers = {**WRITE, "Idempotency-Key": "upload-1"}
    first, again = post(client, CSV, headers), post(client, CSV, headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["campaign_id"] == again.json()["campaign_id"]
    other = post(client, CSV + "+919812345670,carol\n", headers)
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")
    assert count(client.database_url, Campaign) == 1  # type: ignore[attr-defined]
    assert count(client.database_url, IdempotencyKey) == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, READ])
def test_an_upload_needs_a_token_that_may_write(client: TestClient, headers: dict) -> None:
    answer = post(client, CSV, headers)
    assert answer.status_code == (403 if headers is READ else 401)
    assert count(client.database_url, Campaign) == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # about the upload alone
def test_the_upload_is_copied_in_chunks_and_removed_afterwards(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A 1.06 MB file goes through in 64 KiB pieces, never one read of the whole, and no
    spooled file stays behind."""
    reads: list[int] = []
    original = uploads.shutil.copyfileobj

    def copy(source, target, length=0):  # type: ignore[no-untyped-def]
        real_read = source.read

        def read(size: int = -1) -> bytes:
            reads.append(size)
            return real_read(size)

        source.read = read
        return original(source, target, length)

    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(uploads.shutil, "copyfileobj", copy)
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    rows = "+919812345678\n" * 76_000  # 1.06 MB: past Starlette's 1 MB in memory, on disk
    answer = post(client, "phone\n" + rows, scheduled_at="2099-01-01T09:00Z")
    assert answer.status_code == 201, answer.text
    assert answer.json()["recipients"] == 1
    assert len(reads) > 15 and max(reads) == uploads.CHUNK
    assert list(spool.iterdir()) == []


def test_a_csv_with_a_from_column_sends_each_row_from_its_number(client: TestClient) -> None:
    csv = "phone,from\n+919812345678,+919000000002\n+919812345679,\n"
    answer = post(client, csv)
    assert answer.status_code == 201, answer.text
    shown = client.get(f"/campaigns/{answer.json()['campaign_id']}", headers=READ).json()
    assert shown["senders"] == ["+919000000001", "+919000000002"]  # the default, then the row's
    assert shown["progress"]["paused_senders"] == []
