"""docs/json.md is what stickerq.cli.json_docs generates from the views; the views describe
every key (and the help that lists keys names them all); and what real commands print on a
real database is exactly a document of its view."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from pydantic import TypeAdapter
from sqlalchemy import select
from typer.testing import CliRunner

from stickerq.cli import app
from stickerq.cli.json_docs import COMMANDS, REGENERATE, REPORT_EXAMPLE, render
from stickerq.models import Attempt, Message, Pause, utcnow
from stickerq.producer.views.base import json_schema
from stickerq.producer.views.campaigns import CampaignDetailsView, CampaignView, LifecycleView
from stickerq.producer.views.config import ConfigView
from stickerq.producer.views.failures import FailuresView, HistoryView, RequeueView
from stickerq.producer.views.reports import ReportView
from stickerq.producer.views.schedules import ScheduleView
from stickerq.producer.views.sending import EnqueueView, PauseView, ProgressView, ScheduledView
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from tests.conftest import STICKER_ID, make_settings
from tests.helpers import Db

DOCS = Path(__file__).resolve().parent.parent / "docs" / "json.md"
RECIPIENTS = [f"+91981234{n:04d}" for n in range(4)]


def sections(text: str) -> dict[str, str]:
    """The file's parts by their `## ` heading (the part before the first one: "intro")."""
    found: dict[str, str] = {}
    title = "intro"
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            title = line[3:].strip().strip("`")
        found[title] = found.get(title, "") + line
    return found


def test_docs_json_md_is_what_the_views_generate() -> None:
    written, generated = sections(DOCS.read_text(encoding="utf-8")), sections(render())
    drifted = [title for title in generated.keys() | written.keys()
               if generated.get(title) != written.get(title)]  # fmt: skip
    assert not drifted, (
        f"docs/json.md is out of date for {', '.join(sorted(drifted))}: run `{REGENERATE}` "
        "and commit the file"
    )


def properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every (model.field, its schema) of a schema, its definitions' included."""
    models = [schema, *schema.get("$defs", {}).values()]
    return [
        (f"{model.get('title')}.{name}", field)
        for model in models
        for name, field in model.get("properties", {}).items()
    ]


@pytest.mark.parametrize("entry", COMMANDS, ids=lambda entry: entry.command)
def test_every_key_of_every_json_output_is_described(entry: Any) -> None:
    schema = json_schema(entry.output)
    undescribed = [name for name, field in properties(schema) if not field.get("description")]
    assert properties(schema) and not undescribed


def test_the_report_example_in_the_docs_is_a_report() -> None:
    ReportView.model_validate_json(REPORT_EXAMPLE)


# The commands whose --help lists their JSON keys (as a reminder at the prompt): every key of
# the view, at any depth, is named there.
HELP_KEYS = [
    (["campaigns", "list"], list[CampaignView]),
    (["campaigns", "show"], CampaignDetailsView),
    (["campaigns", "pause"], LifecycleView),
    (["campaigns", "resume"], LifecycleView),
    (["campaigns", "cancel"], LifecycleView),
    (["schedules", "list"], list[ScheduleView]),
    (["failures"], FailuresView),
    (["messages", "show"], HistoryView),
    (["requeue"], RequeueView),
]


@pytest.mark.parametrize(("command", "output"), HELP_KEYS, ids=[" ".join(c) for c, _ in HELP_KEYS])
def test_help_that_lists_json_keys_names_every_key_of_the_view(
    command: list[str], output: Any
) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "2000"})
    assert result.exit_code == 0, result.output
    words = set(result.output.replace(",", " ").replace("{", " ").replace("}", " ").split())
    words |= {word.strip("[]():;.") for word in words}
    missing = sorted({name.split(".")[1] for name, _ in properties(json_schema(output))} - words)
    assert not missing, f"`stickerq {' '.join(command)} --help` does not name {missing}"


# --- what real commands print ---------------------------------------------------------------


@pytest.fixture
def cli_settings(pg_database: str, redis_prefix: str) -> Settings:
    """PostgreSQL and Redis, no worker: nothing is sent."""
    return make_settings(pg_database, redis_prefix, "http://127.0.0.1:9", batch_size=2)


def run(settings: Settings, *args: str) -> Result:
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("STICKERQ_")}
    env.update(settings.as_environment(), COLUMNS="200")
    result = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return result


def assert_is_a_document_of(output: Any, printed: str) -> None:
    """`printed` validates against the view, and the view prints it back unchanged."""
    adapter: TypeAdapter[Any] = TypeAdapter(output)
    view = adapter.validate_json(printed)
    assert adapter.dump_python(view, mode="json") == json.loads(printed)


def fail_one_message(settings: Settings, campaign_id: int) -> str:
    """Its first message failed with WA400 after one attempt, and the account is paused."""
    db = Db(settings)
    try:
        with db.sessions.begin() as session:
            message = session.scalars(
                select(Message).where(Message.campaign_id == campaign_id).order_by(Message.id)
            ).first()
            assert message is not None
            message.status, message.last_error_code = MessageStatus.FAILED, "WA400"
            message.attempts, message.last_attempt_at = 1, utcnow()
            message.last_http_status, message.last_error_detail = 400, "payload refused"
            session.add(Attempt(message_pk=message.id, number=1, started_at=utcnow(),
                                latency_ms=12.5, http_status=400, code="WA400", action="failed",
                                detail="payload refused"))  # fmt: skip
            session.add(Pause(scope="account", sid=settings.kaleyra_sid, code="E110",
                              reason="low balance"))  # fmt: skip
            return message.recipient
    finally:
        db.close()


def test_what_the_commands_print_on_a_real_database_is_a_document_of_its_view(
    cli_settings: Settings,
) -> None:
    to = ",".join([*RECIPIENTS, "+91123"])
    sent = run(cli_settings, "send", "--sticker-id", STICKER_ID, "--to", to, "--skip-invalid",
               "--ref1", "north")  # fmt: skip
    campaign_id = json.loads(sent.stdout)["campaign_id"]
    later = run(cli_settings, "send", "--sticker-id", STICKER_ID, "--to", RECIPIENTS[0],
                "--at", "2030-12-01T09:00", "--tz", "Asia/Kolkata")  # fmt: skip
    recipient = fail_one_message(cli_settings, campaign_id)
    campaign = str(campaign_id)

    printed = [
        (EnqueueView, sent),
        (ScheduledView, later),
        (ProgressView, run(cli_settings, "status", campaign)),
        (list[PauseView], run(cli_settings, "pauses")),
        (ConfigView, run(cli_settings, "config")),
        (list[CampaignView], run(cli_settings, "campaigns", "list")),
        (CampaignDetailsView, run(cli_settings, "campaigns", "show", campaign)),
        (ReportView, run(cli_settings, "report", campaign, "--by", "ref1")),
        (FailuresView, run(cli_settings, "failures", "--since", "1d")),
        (HistoryView, run(cli_settings, "messages", "show", recipient)),
        (
            RequeueView,
            run(cli_settings, "requeue", "--campaign", campaign, "--status", "failed", "--dry-run"),
        ),
        (LifecycleView, run(cli_settings, "campaigns", "pause", campaign)),
    ]
    for output, result in printed:
        assert_is_a_document_of(output, result.stdout)
    failures = json.loads(printed[8][1].stdout)
    assert (failures["total"], failures["rows"][0]["code"]) == (1, "WA400")
    assert json.loads(printed[3][1].stdout)[0]["code"] == "E110"
