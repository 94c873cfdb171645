"""The 24-hour window in reports: a campaign sent through a real worker and the sandbox, two
of its messages called back failed with Meta's 131047; `status`, `campaigns show`, `report`
(text and JSON) name them "outside the 24-hour window" with the advice that only a template
message reaches them, and `export` marks their rows."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

from stickerq.producer.window import ADVICE, LABEL
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from tests.conftest import STICKER_ID, wait_until
from tests.helpers import Db
from tests.test_cli import assert_clean_exit, run

RECIPIENTS = [f"+91981234{n:04d}" for n in range(4)]


def failed_outside_window(message_id: str) -> dict:
    error = {"code": 131047, "title": "Re-engagement message"}
    status = {"id": "wamid.x", "status": "failed", "timestamp": "1800000000", "errors": [error]}
    return {
        "status": "failed",
        "message_id": message_id,
        "extra_info": {"message_id": message_id},
        "meta_object": {"value": {"statuses": [status]}},
    }


def test_messages_back_with_131047_are_shown_outside_the_window_with_the_advice(
    settings: Settings,
    sandbox: SandboxServer,
    run_worker: Callable[[Settings], None],
    tmp_path: Path,
) -> None:
    run_worker(settings)
    sent = run(settings, "send", "--sticker-id", STICKER_ID, "--to", ",".join(RECIPIENTS),
               "--json")  # fmt: skip
    assert_clean_exit(sent, 0)
    campaign_id = json.loads(sent.stdout)["campaign_id"]
    db = Db(settings)
    try:
        wait_until(lambda: db.settled(campaign_id))
        messages = db.messages(campaign_id)
    finally:
        db.close()
    cold = [m for m in messages if m.recipient in RECIPIENTS[:2]]
    path = tmp_path / "callbacks.jsonl"
    path.write_text("\n".join(json.dumps(failed_outside_window(m.message_id)) for m in cold))
    assert_clean_exit(run(settings, "callbacks", "apply", str(path)), 0)

    for command in (["status"], ["campaigns", "show"], ["report"]):
        shown = run(settings, *command, str(campaign_id))
        assert_clean_exit(shown, 0)
        text = " ".join(shown.stdout.split())  # rich wraps the caption
        assert re.search(rf"{LABEL}\s*│\s*2\b", shown.stdout), shown.stdout
        assert f"2 messages {LABEL}: {ADVICE}" in text, command

    status = json.loads(run(settings, "status", str(campaign_id), "--json").stdout)
    report = json.loads(run(settings, "report", str(campaign_id), "--json").stdout)
    show = json.loads(run(settings, "campaigns", "show", str(campaign_id), "--json").stdout)
    for window in (status["outside_window"], report["outside_window"],
                   show["progress"]["outside_window"]):  # fmt: skip
        assert window == {"messages": 2, "advice": ADVICE}
    assert status["by_status"] == {MessageStatus.SENT: 2, MessageStatus.FAILED: 2}

    exported = run(settings, "export", str(campaign_id), "--csv", "-")
    assert_clean_exit(exported, 0)
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    marked = {row["recipient"].lstrip("'") for row in rows if row["outside_window"] == "yes"}
    assert marked == set(RECIPIENTS[:2])
    assert {row["outside_window"] for row in rows} == {"yes", ""}


def test_a_campaign_without_131047_says_nothing_about_the_window(
    settings: Settings, run_worker: Callable[[Settings], None], sandbox: SandboxServer
) -> None:
    run_worker(settings)
    sent = run(settings, "send", "--sticker-id", STICKER_ID, "--to", RECIPIENTS[0], "--wait")
    assert_clean_exit(sent, 0)
    report = run(settings, "report", "1")
    assert LABEL not in report.stdout
    status = json.loads(run(settings, "status", "1", "--json").stdout)
    assert status["outside_window"] == {"messages": 0, "advice": None}
