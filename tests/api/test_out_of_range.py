"""Values each of which was a 500 (an OverflowError, OSError, csv.Error, or a column the
database refused) answer a 4xx problem document naming what is wrong, and store nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from stickerq.models import Campaign, Message
from tests.api.conftest import BODY, WRITE, count

HUGE_CELL = "x" * 140_000  # over csv's field limit (128 KiB)


@pytest.mark.parametrize(
    ("extra", "code", "detail"),
    [
        ({"valid_for": "99999999999999d"}, "invalid_validity", "longer than a year"),
        ({"valid_for": "100000w"}, "invalid_validity", "longer than a year"),  # int32 column
        ({"valid_until": "9999-12-31T23:59:59-05:00"}, "invalid_validity", "century ahead"),
        ({"scheduled_at": "9999-12-31T23:00:00Z", "valid_for": "1d"}, "invalid_campaign",
         "century ahead"),
        ({"scheduled_at": "0001-01-01T00:00:00+05:00", "now_if_past": True}, "invalid_campaign",
         "century ago"),
        ({"scheduled_at": "2099-01-01T00:00", "tz": "A" * 1000}, "invalid_campaign",
         "unknown time zone"),
        ({"scheduled_at": "2099-01-01T00:00", "tz": "America"}, "invalid_campaign",
         "unknown time zone"),
        ({"every": "0 0 31 2 *", "tz": "UTC"}, "invalid_campaign", "never fires"),
        ({"every": ",".join(["0"] * 100) + " 9 * * *", "tz": "UTC"}, "invalid_campaign",
         "at most 120"),
        ({"every": "* * * * * *", "tz": "UTC"}, "invalid_campaign", "five fields"),
    ],
    ids=["valid-for-overflow", "valid-for-over-int32", "valid-until-year-9999",
         "at-plus-deadline-past-9999", "at-year-1", "tz-too-long-for-a-file", "tz-a-folder",
         "cron-never-fires", "cron-over-the-column", "cron-seconds-field"],
)  # fmt: skip
def test_out_of_range_times_answer_422_and_store_nothing(
    client: TestClient, extra: dict[str, Any], code: str, detail: str
) -> None:
    answer = client.post("/campaigns", json={**BODY, **extra}, headers=WRITE)

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert (answer.json()["code"], detail in answer.json()["detail"]) == (code, True)
    assert count(client.database_url, Campaign) == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "csv_text",
    [f"phone{HUGE_CELL}\n+919812345678\n", f'phone\n+919812345678\n"{HUGE_CELL}"\n'],
    ids=["header-cell", "row-cell-after-a-valid-row"],
)
def test_a_csv_cell_over_the_field_limit_is_an_invalid_file_naming_the_line(
    client: TestClient, csv_text: str
) -> None:
    files = {"recipients": ("big.csv", csv_text.encode())}
    answer = client.post("/campaigns", data={"sticker_id": "m1"}, files=files, headers=WRITE)

    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "invalid_recipients_file"
    assert problem["detail"].startswith("big.csv, line ")
    assert "a cell is longer than 131,072 characters" in problem["detail"]
    assert len(answer.text) < 2_000  # the cell is not quoted back
    database_url = client.database_url  # type: ignore[attr-defined]
    assert (count(database_url, Campaign), count(database_url, Message)) == (0, 0)


@pytest.mark.parametrize("offset", [2**63, 10**20])
def test_an_offset_past_64_bits_is_a_422_not_a_database_error(
    client: TestClient, offset: int
) -> None:
    answer = client.get(f"/campaigns?offset={offset}", headers=WRITE)

    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["location"] == "query.offset"


@pytest.mark.parametrize("reason", ["on\x00hold", "r" * 1_000_000], ids=["nul", "a-megabyte"])
def test_a_pause_reason_no_column_takes_is_a_422_and_pauses_nothing(
    client: TestClient, reason: str
) -> None:
    campaign_id = client.post("/campaigns", json=BODY, headers=WRITE).json()["campaign_id"]

    answer = client.post(f"/campaigns/{campaign_id}/pause", json={"reason": reason}, headers=WRITE)

    assert answer.status_code == 422, answer.text
    assert "at most 500 characters of text, without NUL" in answer.json()["detail"]
    shown = client.get(f"/campaigns/{campaign_id}", headers=WRITE).json()
    assert shown["status"] == "queued"
