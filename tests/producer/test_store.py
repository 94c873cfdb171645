"""Enqueueing a campaign end to end on SQLite and PostgreSQL: what is stored, what is
published to Redis, and that a rejected campaign leaves nothing behind (no rows, no tasks)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from stickerq.db import make_engine, make_session_factory
from stickerq.errors import ConfigurationError, ServiceUnavailable
from stickerq.models import Campaign, Message
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.bulk_insert import INSERT_CHUNK
from stickerq.producer.recipients import (
    MAX_INVALID_EXAMPLES,
    InvalidRow,
    RecipientError,
    RecipientFileError,
)
from stickerq.producer.request import CampaignRequest
from stickerq.producer.spec import REF_MAX, SpecError
from stickerq.producer.store import RecipientsRejected
from stickerq.queue import SEND_BATCH, send_queue
from stickerq.queue import queued_tasks as celery_queued_tasks
from stickerq.settings import Settings
from stickerq.states import CampaignStatus, MessageStatus
from tests.conftest import SENDER, STICKER_ID, make_settings
from tests.helpers import Db, stored_counts
from tests.queued import queued_bodies

UNREACHABLE_API = "http://127.0.0.1:9"  # no worker runs here: nothing is ever sent
A, B, C, D, E = (f"+91981234567{n}" for n in range(5))


@pytest.fixture
def store_settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(database_url, redis_prefix, UNREACHABLE_API, batch_size=2)


@pytest.fixture
def db(store_settings: Settings) -> Iterator[Db]:
    reader = Db(store_settings)
    yield reader
    reader.close()


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def queue_key(settings: Settings, campaign_id: int) -> str:
    return f"{settings.redis_prefix}{send_queue(campaign_id)}"


def queued_tasks(settings: Settings) -> list[tuple[str, list]]:
    """The Celery messages waiting in the test's Redis queue: (task name, args)."""
    client = redis.Redis.from_url(settings.redis_url)
    tasks = []
    for raw in queued_bodies(client, settings.redis_prefix):
        envelope = json.loads(raw)
        body = json.loads(base64.b64decode(envelope["body"]))
        tasks.append((envelope["headers"]["task"], body[0]))
    return tasks


def assert_nothing_stored(settings: Settings) -> None:
    assert stored_counts(settings) == (0, 0)
    assert celery_queued_tasks(redis.Redis.from_url(settings.redis_url), settings.redis_prefix) == 0


# --- what a valid campaign stores and publishes -------------------------------------------


def test_valid_campaign_is_stored_queued_and_published_one_task_per_batch(
    store_settings: Settings, db: Db
) -> None:
    result = enqueue_campaign(
        store_settings,
        CampaignRequest(sticker_id=STICKER_ID, name="launch", to=f"{A}, {B},{C} ,{D},{E}"),
    )

    assert (result.recipients, result.duplicates, result.invalid_count) == (5, 0, 0)
    assert result.batches == 3  # batch_size 2: 2 + 2 + 1
    campaign = db.campaign(result.campaign_id)
    assert campaign.status == CampaignStatus.QUEUED
    assert campaign.recipient_count == 5
    assert (campaign.name, campaign.sender, campaign.sid) == (
        "launch",
        SENDER,
        store_settings.kaleyra_sid,
    )
    assert (campaign.sticker_id, campaign.sticker_link, campaign.wa_source) == (
        STICKER_ID,
        None,
        "api",
    )
    messages = db.messages(result.campaign_id)
    assert [m.recipient for m in messages] == [A, B, C, D, E]
    assert {m.status for m in messages} == {MessageStatus.PENDING}
    assert {m.attempts for m in messages} == {0}

    # The queue list lives under the test's prefix; one Celery message per batch, carrying
    # only the campaign id and message ids, and every message id exactly once.
    client = redis.Redis.from_url(store_settings.redis_url)
    lists = [
        key.decode()
        for key in client.scan_iter(match=f"{store_settings.redis_prefix}*")
        if client.type(key) == b"list"
    ]
    assert lists == [queue_key(store_settings, result.campaign_id)]
    tasks = queued_tasks(store_settings)
    assert len(tasks) == result.batches
    assert {name for name, _ in tasks} == {SEND_BATCH}
    assert {args[0] for _, args in tasks} == {result.campaign_id}
    published = [pk for _, args in tasks for pk in args[1]]
    assert sorted(published) == [m.id for m in messages]
    assert sorted(len(args[1]) for _, args in tasks) == [1, 2, 2]


def test_sticker_link_campaign_stores_the_https_link(store_settings: Settings, db: Db) -> None:
    link = "https://cdn.example.com/stickers/hello.webp"
    request = CampaignRequest(sticker_link=link, to=A, no_check=True)  # no network here
    result = enqueue_campaign(store_settings, request)
    campaign = db.campaign(result.campaign_id)
    assert (campaign.sticker_id, campaign.sticker_link) == (None, link)


def test_duplicates_in_any_format_are_dropped_and_counted_keeping_the_first(
    store_settings: Settings, db: Db, tmp_path: Path
) -> None:
    csv_file = write_csv(
        tmp_path / "r.csv",
        "phone,ref\n"
        f"{A},first\n"
        "+91 98123-45670,second\n"  # A again, written differently
        f"{B},b\n"
        "(+91) 98123.45671,again\n"  # B again
        f"{A},third\n",
    )
    result = enqueue_campaign(
        store_settings, CampaignRequest(sticker_id=STICKER_ID, to_file=csv_file)
    )

    assert (result.recipients, result.duplicates, result.invalid_count) == (2, 3, 0)
    assert db.campaign(result.campaign_id).recipient_count == 2
    messages = db.messages(result.campaign_id)
    assert [(m.recipient, m.ref) for m in messages] == [(A, "first"), (B, "b")]


def test_csv_row_refs_are_stored_and_campaign_defaults_fill_empty_or_missing_cells(
    store_settings: Settings, db: Db, tmp_path: Path
) -> None:
    csv_file = write_csv(
        tmp_path / "r.csv",
        "phone,ref,ref1\n"  # no ref2 column at all
        f"{A},order-1,cust-1\n"
        f"{B},,cust-2\n"  # empty ref
        f"{C}, , \n"  # blank cells read as empty
        f"{D}\n",  # short row
    )
    result = enqueue_campaign(
        store_settings,
        CampaignRequest(
            sticker_id=STICKER_ID,
            to_file=csv_file,
            ref="camp-ref",
            ref1="camp-ref1",
            ref2="camp-ref2",
        ),
    )

    messages = {m.recipient: (m.ref, m.ref1, m.ref2) for m in db.messages(result.campaign_id)}
    assert messages == {
        A: ("order-1", "cust-1", "camp-ref2"),
        B: ("camp-ref", "cust-2", "camp-ref2"),
        C: ("camp-ref", "camp-ref1", "camp-ref2"),
        D: ("camp-ref", "camp-ref1", "camp-ref2"),
    }
    campaign = db.campaign(result.campaign_id)
    assert (campaign.ref, campaign.ref1, campaign.ref2) == ("camp-ref", "camp-ref1", "camp-ref2")
    assert result.warnings == []


def test_list_recipients_get_the_campaign_default_refs(store_settings: Settings, db: Db) -> None:
    result = enqueue_campaign(
        store_settings, CampaignRequest(sticker_id=STICKER_ID, to=f"{A},{B}", ref="r", ref2="r2")
    )
    refs = {(m.ref, m.ref1, m.ref2) for m in db.messages(result.campaign_id)}
    assert refs == {("r", None, "r2")}


def test_row_ref_over_255_characters_is_truncated_with_a_warning(
    store_settings: Settings, db: Db, tmp_path: Path
) -> None:
    exact, long = "x" * REF_MAX, "y" * 300
    csv_file = write_csv(
        tmp_path / "r.csv",
        f"phone,ref,ref1,ref2\n{A},{long},{exact},short\n{B},{long},,{long}\n",
    )
    result = enqueue_campaign(
        store_settings, CampaignRequest(sticker_id=STICKER_ID, to_file=csv_file)
    )

    messages = {m.recipient: (m.ref, m.ref1, m.ref2) for m in db.messages(result.campaign_id)}
    assert messages == {A: ("y" * REF_MAX, exact, "short"), B: ("y" * REF_MAX, None, "y" * REF_MAX)}
    assert any("3 per-row ref value(s) cut to 255" in warning for warning in result.warnings)


def test_campaign_ref_over_255_characters_is_truncated_with_a_warning(
    store_settings: Settings, db: Db
) -> None:
    result = enqueue_campaign(
        store_settings, CampaignRequest(sticker_id=STICKER_ID, to=A, ref1="z" * 400)
    )

    campaign = db.campaign(result.campaign_id)
    assert campaign.ref1 == "z" * REF_MAX
    assert db.message(result.campaign_id, A).ref1 == "z" * REF_MAX
    assert len(result.warnings) == 1
    assert "ref1 is 400 characters long" in result.warnings[0]
    assert "truncated" in result.warnings[0]


@pytest.mark.parametrize(
    ("given", "stored", "warned"),
    [
        ("clevertap", "clevertap", False),
        ("  Zoho ", "zoho", False),
        ("mailchimp", "api", True),
    ],
)
def test_wa_source_is_normalised_and_an_unknown_one_becomes_api_with_a_warning(
    store_settings: Settings, db: Db, given: str, stored: str, warned: bool
) -> None:
    result = enqueue_campaign(
        store_settings, CampaignRequest(sticker_id=STICKER_ID, to=A, wa_source=given)
    )

    assert db.campaign(result.campaign_id).wa_source == stored
    if warned:
        assert len(result.warnings) == 1
        assert "'mailchimp'" in result.warnings[0]
        assert "'api' is sent instead" in result.warnings[0]
    else:
        assert result.warnings == []


# --- rejections store nothing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("campaign", "field", "problem"),
    [
        (CampaignRequest(to=A), "sticker", "no sticker given"),
        (
            CampaignRequest(sticker_id=STICKER_ID, sticker_link="https://example.com/s.webp", to=A),
            "sticker",
            "both a media id and a link given",
        ),
        (
            CampaignRequest(sticker_link="http://example.com/s.webp", to=A),
            "sticker_link",
            "must be https",
        ),
        (CampaignRequest(sticker_link="not a url", to=A), "sticker_link", "not a valid URL"),
        (CampaignRequest(sticker_id="   ", to=A), "sticker_id", "the media id is empty"),
    ],
    ids=["missing", "both-id-and-link", "http-link", "malformed-link", "blank-id"],
)
def test_bad_sticker_is_rejected_naming_the_field_and_nothing_is_stored(
    store_settings: Settings, campaign: CampaignRequest, field: str, problem: str
) -> None:
    with pytest.raises(SpecError) as caught:
        enqueue_campaign(store_settings, campaign)

    assert [p.field for p in caught.value.problems] == [field]
    assert problem in caught.value.problems[0].problem
    assert caught.value.problems[0].how_to_fix
    assert_nothing_stored(store_settings)


def test_every_spec_problem_is_reported_at_once_and_nothing_is_stored(
    store_settings: Settings,
) -> None:
    with pytest.raises(SpecError) as caught:
        enqueue_campaign(store_settings, CampaignRequest(sender="12", name="n" * 201, to=A))

    fields = {p.field for p in caught.value.problems}
    assert fields == {"sticker", "sender", "name"}
    assert "3 problems" in str(caught.value)
    assert_nothing_stored(store_settings)


def test_missing_sender_is_a_configuration_error_and_nothing_is_stored(
    database_url: str, redis_prefix: str
) -> None:
    settings = make_settings(database_url, redis_prefix, UNREACHABLE_API, sender=None)
    with pytest.raises(ConfigurationError, match="no sender number"):
        enqueue_campaign(settings, CampaignRequest(sticker_id=STICKER_ID, to=A))
    assert_nothing_stored(settings)


def test_invalid_numbers_reject_the_whole_campaign_with_line_and_reason(
    store_settings: Settings,
) -> None:
    with pytest.raises(RecipientsRejected) as caught:
        enqueue_campaign(
            store_settings, CampaignRequest(sticker_id=STICKER_ID, to=f"{A},+91123,{B},{A},abc,{C}")
        )

    report = caught.value.report
    assert report.invalid == [
        InvalidRow(2, "+91123", "too short for a +91 number"),
        InvalidRow(
            5, "abc", "only digits, a leading +, spaces, dashes, dots and parentheses are allowed"
        ),
    ]
    assert (report.invalid_count, report.valid, report.duplicates) == (2, 3, 1)
    message = str(caught.value)
    assert "2 invalid recipient(s)" in message
    assert "nothing was stored" in message
    assert "--skip-invalid" in message
    assert_nothing_stored(store_settings)


def test_invalid_rows_after_a_bulk_insert_chunk_still_store_nothing(
    store_settings: Settings, tmp_path: Path
) -> None:
    good = INSERT_CHUNK + 500  # at least one chunk is inserted before the bad row is met
    lines = ["phone,ref", "+44 7911 1234", *(f"+9198{n:08d},r{n}" for n in range(good)), "+1 555"]
    csv_file = write_csv(tmp_path / "r.csv", "\n".join(lines) + "\n")

    with pytest.raises(RecipientsRejected) as caught:
        enqueue_campaign(store_settings, CampaignRequest(sticker_id=STICKER_ID, to_file=csv_file))

    report = caught.value.report
    assert [(row.line, row.value) for row in report.invalid] == [
        (2, "+44 7911 1234"),
        (good + 3, "+1 555"),
    ]
    assert all(row.reason for row in report.invalid)
    assert report.valid == good
    assert_nothing_stored(store_settings)


def test_skip_invalid_stores_the_valid_rows_and_reports_the_rest_with_lines(
    store_settings: Settings, db: Db, tmp_path: Path
) -> None:
    csv_file = write_csv(
        tmp_path / "r.csv",
        f"phone,ref\n{A},a\n12345,x\n{B},b\n,orphan ref\n{A},dup\n+999123456789,y\n",
    )
    result = enqueue_campaign(
        store_settings, CampaignRequest(sticker_id=STICKER_ID, to_file=csv_file, skip_invalid=True)
    )

    assert (result.recipients, result.duplicates, result.invalid_count) == (2, 1, 3)
    assert [(row.line, row.value) for row in result.invalid] == [
        (3, "12345"),
        (5, ",orphan ref"),
        (7, "+999123456789"),
    ]
    assert "no country code" in result.invalid[0].reason
    assert result.invalid[1].reason == "the phone cell is empty"
    assert result.invalid[2].reason == "unknown country code: check the digits after +"
    campaign = db.campaign(result.campaign_id)
    assert (campaign.status, campaign.recipient_count) == (CampaignStatus.QUEUED, 2)
    assert [(m.recipient, m.ref) for m in db.messages(result.campaign_id)] == [
        (A, "a"),
        (B, "b"),
    ]
    assert stored_counts(store_settings) == (1, 2)
    assert len(queued_tasks(store_settings)) == result.batches == 1


def test_more_invalid_rows_than_can_be_listed_are_counted_with_a_warning(
    store_settings: Settings, db: Db
) -> None:
    invalid = MAX_INVALID_EXAMPLES + 500
    to = ",".join([A, *(["12"] * invalid), B])

    with pytest.raises(RecipientsRejected) as caught:
        enqueue_campaign(store_settings, CampaignRequest(sticker_id=STICKER_ID, to=to))
    assert caught.value.report.invalid_count == invalid
    assert len(caught.value.report.invalid) == MAX_INVALID_EXAMPLES
    assert_nothing_stored(store_settings)

    result = enqueue_campaign(
        store_settings, CampaignRequest(sticker_id=STICKER_ID, to=to, skip_invalid=True)
    )
    assert (result.recipients, result.invalid_count) == (2, invalid)
    assert len(result.invalid) == MAX_INVALID_EXAMPLES
    assert result.invalid[-1].line == MAX_INVALID_EXAMPLES + 1
    assert f"only the first {MAX_INVALID_EXAMPLES} of {invalid} invalid rows" in " ".join(
        result.warnings
    )
    assert [m.recipient for m in db.messages(result.campaign_id)] == [A, B]


def test_no_valid_recipient_is_rejected_even_with_skip_invalid(store_settings: Settings) -> None:
    with pytest.raises(RecipientsRejected, match="no valid recipient"):
        enqueue_campaign(
            store_settings,
            CampaignRequest(sticker_id=STICKER_ID, to="12345,abc", skip_invalid=True),
        )
    assert_nothing_stored(store_settings)


@pytest.mark.parametrize(
    ("campaign", "message"),
    [
        (
            CampaignRequest(sticker_id=STICKER_ID, to=A, to_file=Path("/nonexistent.csv")),
            "give only one",
        ),
        (CampaignRequest(sticker_id=STICKER_ID), "no recipients"),
        (CampaignRequest(sticker_id=STICKER_ID, to="  "), "no recipients"),
        (
            CampaignRequest(sticker_id=STICKER_ID, to_file=Path("/nonexistent/r.csv")),
            "no such file",
        ),
    ],
    ids=["list-and-file", "none", "blank-list", "missing-file"],
)
def test_unusable_recipient_source_is_rejected_and_nothing_is_stored(
    store_settings: Settings, campaign: CampaignRequest, message: str
) -> None:
    with pytest.raises(RecipientError, match=message):
        enqueue_campaign(store_settings, campaign)
    assert_nothing_stored(store_settings)


# Enough good rows that a bulk-insert chunk is written, and the file reader (8 KiB at a time)
# has handed those rows over, before the bad part of the file is read.
GOOD_ROWS = INSERT_CHUNK + 2_000


def _after_good_rows(tail: bytes) -> bytes:
    rows = "".join(f"+9198{n:08d}\n" for n in range(GOOD_ROWS))
    return b"phone\n" + rows.encode() + tail


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"number,ref\n+919812345670,a\n", "line 1: no 'phone' column"),
        (b"+919812345670\n+919812345671\n", "add a line `phone` above it"),
        (_after_good_rows(b"+91981234\xe9\n"), f"line {GOOD_ROWS + 2}: the file is not UTF-8"),
        (_after_good_rows(b"+9198\x0012\n"), f"line {GOOD_ROWS + 2}: the file contains a NUL"),
        ("phone\n+919812345670\n".encode("utf-16"), "line 1: the file is not UTF-8"),
        (_after_good_rows(b'"' + b"9" * 200_000 + b'"\n'), "not a valid CSV file"),
    ],
    ids=[
        "empty",
        "no-phone-column",
        "no-header",
        "latin1-after-a-chunk",
        "nul-after-a-chunk",
        "utf16",
        "oversized-field-after-a-chunk",
    ],
)
def test_malformed_csv_is_rejected_with_file_and_line_and_nothing_is_stored(
    store_settings: Settings, tmp_path: Path, content: bytes, message: str
) -> None:
    csv_file = tmp_path / "recipients.csv"
    csv_file.write_bytes(content)

    with pytest.raises(RecipientFileError) as caught:
        enqueue_campaign(store_settings, CampaignRequest(sticker_id=STICKER_ID, to_file=csv_file))

    assert str(caught.value).startswith(str(csv_file))
    assert message in str(caught.value)
    assert_nothing_stored(store_settings)


def test_redis_down_raises_service_unavailable_and_stores_nothing(
    database_url: str, redis_prefix: str
) -> None:
    settings = make_settings(
        database_url, redis_prefix, UNREACHABLE_API, redis_url="redis://127.0.0.1:1/0"
    )
    with pytest.raises(
        ServiceUnavailable, match=r"Redis is not reachable at redis://127\.0\.0\.1:1"
    ):
        enqueue_campaign(settings, CampaignRequest(sticker_id=STICKER_ID, to=f"{A},{B}"))
    assert stored_counts(settings) == (0, 0)


# --- scale ----------------------------------------------------------------------------------


def test_100k_row_csv_is_stored_in_one_go_and_published_in_batches(
    database_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    rows = 100_000
    settings = make_settings(database_url, redis_prefix, UNREACHABLE_API, batch_size=500)
    csv_file = tmp_path / "big.csv"
    with csv_file.open("w", encoding="utf-8") as handle:
        handle.write("phone,ref\n")
        handle.writelines(f"+9198{n:08d},order-{n}\n" for n in range(rows))
        handle.write("+919800000000,dup\n")

    result = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to_file=csv_file)
    )  # how fast: bench/enqueue.py, not a test

    assert (result.recipients, result.duplicates, result.invalid_count) == (rows, 1, 0)
    assert result.batches == rows // 500
    assert stored_counts(settings) == (1, rows)
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        campaign = session.get(Campaign, result.campaign_id)
        assert campaign is not None
        assert campaign.recipient_count == rows
        last = session.scalars(
            select(Message).where(Message.recipient == f"+9198{rows - 1:08d}")
        ).one()
        assert last.ref == f"order-{rows - 1}"
    engine.dispose()
    client = redis.Redis.from_url(settings.redis_url)
    assert celery_queued_tasks(client, settings.redis_prefix) == result.batches
