"""One campaign, several business numbers (a recipients CSV's `from` column), through a real
worker and the sandbox: each row goes from its number, a WA401 pauses only that number while
the others go on, and each number keeps its own rate."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from stickerq.db import open_sessions
from stickerq.export import export_chunks, unguard_cell
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.operations import resume_sending
from stickerq.producer.progress import campaign_progress
from stickerq.producer.request import CampaignRequest
from stickerq.producer.senders import set_rate
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from stickerq.worker.sweeper import redispatch_uncovered
from tests.conftest import REDIS_URL, SENDER, STICKER_ID, wait_until
from tests.helpers import Db
from tests.test_cli import assert_clean_exit, run
from tests.worker.test_global_limit import max_in_any_second

OTHER = "+919000000002"  # not registered on the sandbox at first: answered WA401


def mixed_csv(tmp_path: Path, count: int) -> tuple[Path, dict[str, str]]:
    """`count` rows, alternately from SENDER and OTHER, so every batch holds both."""
    senders = {f"+91981234{n:04d}": (SENDER, OTHER)[n % 2] for n in range(count)}
    path = tmp_path / "replies.csv"
    rows = "".join(f"{phone},{sender},row{int(phone[-4:])}\n" for phone, sender in senders.items())
    path.write_text("phone,from,ref\n" + rows, encoding="utf-8")
    return path, senders


def test_a_wa401_pauses_only_its_number_and_resuming_it_sends_the_rest(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"sender": None, "batch_size": 10, "in_flight": 4})
    path, sender_of = mixed_csv(tmp_path, 40)
    run_worker(settings)
    db = Db(settings)
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to_file=path)
    ).campaign_id

    def own_rows_sent_and_other_paused() -> bool:
        messages = db.messages(campaign_id)
        return (
            bool(db.active_pauses())
            and not any(m.status == MessageStatus.SENDING for m in messages)
            and all(m.status == MessageStatus.SENT for m in messages if m.sender == SENDER)
        )

    wait_until(own_rows_sent_and_other_paused)
    [pause] = db.active_pauses()
    assert (pause.scope, pause.sender, pause.code) == ("sender", OTHER, "WA401")
    accepted = sandbox.accepted()
    assert {row["recipient"]: row["sender"] for row in accepted} == {
        phone: sender for phone, sender in sender_of.items() if sender == SENDER
    }
    others = [m for m in db.messages(campaign_id) if m.sender == OTHER]
    parked = {m.recipient for m in others if m.status == MessageStatus.PARKED}
    waiting = {m.recipient for m in others if m.status == MessageStatus.PENDING}
    assert len(parked) == sandbox.stats()["by_code"]["WA401"] >= 1
    assert len(parked) + len(waiting) == 20
    with open_sessions(settings.database_url) as sessions:
        with sessions() as session:
            progress = campaign_progress(session, campaign_id)
        assert progress.status == "running" and progress.pause is None  # not held as a whole
        assert [p["sender"] for p in progress.paused_senders] == [OTHER]
        # The sweeper leaves the paused number's messages alone: nothing to re-dispatch.
        client = redis.Redis.from_url(REDIS_URL)
        assert redispatch_uncovered(sessions, client, settings.redis_prefix, 10) == 0
        client.close()

    sandbox.configure(senders=[SENDER, OTHER])
    lifted, batches = resume_sending(settings, sender=OTHER, actor="tester")
    assert lifted == 1 and batches >= 1
    wait_until(lambda: not any(m.status == "pending" for m in db.messages(campaign_id)))
    wait_until(lambda: db.settled(campaign_id))
    accepted = sandbox.accepted()
    assert {row["recipient"]: row["sender"] for row in accepted} == {
        phone: sender for phone, sender in sender_of.items() if phone not in parked
    }
    assert all(count == 1 for count in sandbox.stats()["accepted"].values())
    assert all(row["ref"] == f"row{int(row['recipient'][-4:])}" for row in accepted)
    db.assert_counters_exact(campaign_id)
    with db.sessions() as session:
        exported = list(csv.DictReader(io.StringIO("".join(export_chunks(session, campaign_id)))))
    assert {unguard_cell(r["recipient"]): unguard_cell(r["sender"]) for r in exported} == sender_of
    db.close()


@pytest.mark.serial  # times arrivals at the sandbox
def test_each_number_of_one_batch_sends_at_its_own_rate(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable, tmp_path: Path
) -> None:
    slow = 10.0
    settings = settings.model_copy(update={"sender": None, "batch_size": 60, "in_flight": 20})
    sandbox.configure(senders=[SENDER, OTHER])
    set_rate(
        settings, OTHER, slow, actor="tester"
    )  # SENDER keeps the default: 1,000/s in the tests
    path, _ = mixed_csv(tmp_path, 60)  # one batch: 30 from each number
    run_worker(settings)
    db = Db(settings)
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to_file=path)
    ).campaign_id
    wait_until(lambda: db.settled(campaign_id), timeout=30)
    db.close()
    arrivals = {SENDER: [], OTHER: []}  # type: dict[str, list[float]]
    for row in sandbox.accepted():
        arrivals[row["sender"]].append(row["at"])
    fast, limited = sorted(arrivals[SENDER]), sorted(arrivals[OTHER])
    assert len(fast) == len(limited) == 30
    assert max_in_any_second(limited) <= slow * 1.1 + 1, limited
    limited_span = limited[-1] - limited[0]
    assert limited_span >= 29 / slow * 0.85
    # The fast number was not held to the slow one's pace: it was done long before.
    assert fast[-1] - fast[0] < limited_span / 3


def test_send_wait_returns_once_only_the_paused_numbers_messages_are_left(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"sender": None, "batch_size": 3, "in_flight": 2})
    path, sender_of = mixed_csv(tmp_path, 12)
    run_worker(settings)

    result = run(settings, "send", "--sticker-id", STICKER_ID, "--to-file", str(path), "--wait")

    assert_clean_exit(result, 3)  # not 0: the paused number's messages wait for an operator
    assert f"campaign cannot go on: sender {OTHER} paused after WA401" in result.stdout
    assert f"stickerq resume --sender {OTHER}" in result.stdout
    assert {row["recipient"] for row in sandbox.accepted()} == {
        phone for phone, sender in sender_of.items() if sender == SENDER
    }
    campaign_id = re.search(r"campaign (\d+):", result.stdout).group(1)  # type: ignore[union-attr]
    shown = run(settings, "campaigns", "show", campaign_id, "--json")
    assert_clean_exit(shown, 0)
    details = json.loads(shown.stdout)
    assert details["senders"] == [SENDER, OTHER]
    assert [p["sender"] for p in details["progress"]["paused_senders"]] == [OTHER]
    assert details["progress"]["pause"] is None
