"""Sticker checks end to end, from the CLI: `media upload` checks a file and uploads it to
the sandbox, whose media id then sends through a real worker; `send --sticker-link` fetches
the link (the sandbox serves the uploaded WebP over loopback http, allowed explicitly) and
refuses a bad one with nothing stored, unless --no-check."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from tests.conftest import TEST_API_KEY, make_settings, wait_until
from tests.helpers import Db, stored_counts
from tests.test_cli import assert_clean_exit, run
from tests.webp import webp

A, B = "+919812345670", "+919812345671"


@pytest.fixture
def db(settings: Settings) -> Iterator[Db]:
    reader = Db(settings)
    yield reader
    reader.close()


def sticker(tmp_path: Path, data: bytes | None = None) -> Path:
    path = tmp_path / "hello.webp"
    path.write_bytes(webp() if data is None else data)
    return path


def uploaded(settings: Settings, path: Path) -> str:
    result = run(settings, "media", "upload", str(path), "--json")
    assert_clean_exit(result, 0)
    assert TEST_API_KEY not in result.output
    document = json.loads(result.stdout)
    assert (document["width"], document["height"], document["animated"]) == (512, 512, False)
    return str(document["media_id"])


def test_an_uploaded_media_id_sends_and_an_unknown_one_is_wa400(
    settings: Settings,
    sandbox: SandboxServer,
    run_worker: Callable[[Settings], None],
    db: Db,
    tmp_path: Path,
) -> None:
    media_id = uploaded(settings, sticker(tmp_path))
    sandbox.configure(known_media_only=True)
    run_worker(settings)
    good = run(settings, "send", "--sticker-id", media_id, "--to", A, "--json")
    unknown = run(settings, "send", "--sticker-id", "555000111", "--to", B, "--json")
    assert_clean_exit(good, 0)
    assert_clean_exit(unknown, 0)
    good_id, unknown_id = (json.loads(r.stdout)["campaign_id"] for r in (good, unknown))
    wait_until(lambda: db.settled(good_id) and db.settled(unknown_id))
    assert db.message(good_id, A).status == MessageStatus.SENT
    failed = db.message(unknown_id, B)
    assert (failed.status, failed.last_error_code) == (MessageStatus.FAILED, "WA400")
    [accepted] = sandbox.accepted()
    assert accepted["recipient"] == A
    sent_body = next(r["body"] for r in sandbox.requests() if r["recipient"] == A)
    assert sent_body["messaging_object"]["sticker"] == {"id": media_id}


def test_media_upload_refuses_a_bad_file_with_every_rule_and_uploads_nothing(
    settings: Settings, sandbox: SandboxServer, tmp_path: Path
) -> None:
    path = sticker(tmp_path, webp((300, 200), noise=True, lossless=True))
    result = run(settings, "media", "upload", str(path))
    assert_clean_exit(result, 2)
    assert "cannot be sent (2 problems)" in result.output
    assert "300 x 200 pixels" in result.output and "at most 100.0 KB" in result.output


def test_media_upload_with_a_wrong_key_says_kaleyra_refused_without_the_key(
    pg_database: str, redis_prefix: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    wrong = make_settings(pg_database, redis_prefix, sandbox.url, kaleyra_api_key="not-the-key")
    result = run(wrong, "media", "upload", str(sticker(tmp_path)))
    assert_clean_exit(result, 2)
    assert "Kaleyra refused the upload: HTTP 401 RBC001" in result.output
    assert "not-the-key" not in result.output


def test_a_sticker_link_is_checked_before_anything_is_stored(
    settings: Settings, sandbox: SandboxServer, tmp_path: Path
) -> None:
    media_id = uploaded(settings, sticker(tmp_path))
    link = f"{sandbox.url}/_sandbox/media/{media_id}"
    local = settings.model_copy(update={"sticker_check_allow_hosts": "127.0.0.1"})

    # By default a link must be https, and the sandbox's loopback address is never fetched.
    plain = run(settings, "send", "--sticker-link", link, "--to", A)
    assert_clean_exit(plain, 2)
    assert "the link must be https, not http" in plain.output
    secure = link.replace("http://", "https://")
    refused = run(settings, "send", "--sticker-link", secure, "--to", A)
    assert_clean_exit(refused, 2)
    assert "(a loopback address): stickerq never fetches internal" in refused.output
    assert stored_counts(settings) == (0, 0)

    stored = run(local, "send", "--sticker-link", link, "--to", A, "--json")
    assert_clean_exit(stored, 0)
    assert stored_counts(settings) == (1, 1)

    missing = run(local, "send", "--sticker-link", f"{sandbox.url}/_sandbox/media/nope", "--to", A)
    assert_clean_exit(missing, 2)
    assert "not reachable: the server answered HTTP 404" in missing.output
    assert stored_counts(settings) == (1, 1)


def test_no_check_stores_a_link_without_fetching_it(settings: Settings) -> None:
    link = "https://127.0.0.1:9/never-fetched.webp"
    refused = run(settings, "send", "--sticker-link", link, "--to", A)
    assert_clean_exit(refused, 2)
    assert "a loopback address" in refused.output
    stored = run(settings, "send", "--sticker-link", link, "--to", A, "--no-check")
    assert_clean_exit(stored, 0)
    assert stored_counts(settings) == (1, 1)


def test_media_upload_exits_1_when_kaleyra_cannot_be_reached(
    pg_database: str, redis_prefix: str, tmp_path: Path
) -> None:
    nowhere = make_settings(pg_database, redis_prefix, "http://127.0.0.1:9")
    result = run(nowhere, "media", "upload", str(sticker(tmp_path)))
    assert_clean_exit(result, 1)
    assert "cannot upload to http://127.0.0.1:9: ConnectError" in result.output
    assert TEST_API_KEY not in result.output
