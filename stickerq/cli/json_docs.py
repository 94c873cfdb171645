"""Write docs/json.md: for every `--json` of the CLI a paragraph and its JSON Schema, generated
from the models in stickerq.producer.views. (The CSV export, not JSON, is docs/export.md.)

    python -m stickerq.cli.json_docs [docs/json.md]

tests/test_json_docs.py fails when the file differs from what this writes.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_origin

from stickerq.producer.views.accounts import AccountsView
from stickerq.producer.views.audit import AuditPageView
from stickerq.producer.views.base import json_schema
from stickerq.producer.views.callbacks import UnknownCallbackView
from stickerq.producer.views.campaigns import CampaignDetailsView, CampaignView, LifecycleView
from stickerq.producer.views.config import ConfigView
from stickerq.producer.views.erasure import ErasureView
from stickerq.producer.views.failures import FailuresView, HistoryView, RequeueView
from stickerq.producer.views.keys import KeyView, NewKeyView
from stickerq.producer.views.media import MediaUploadView
from stickerq.producer.views.reports import ReportView
from stickerq.producer.views.schedules import RescheduleView, ScheduleView
from stickerq.producer.views.senders import SenderRateChangeView, SenderRatesView
from stickerq.producer.views.sending import PauseView, ProgressView, SendOutput, WaitedSendOutput
from stickerq.producer.views.suppressions import (
    SuppressionPageView,
    SuppressResultView,
    UnsuppressView,
)
from stickerq.producer.views.webhooks import AddedWebhookView, DeliveryView, WebhookView
from stickerq.producer.views.windows import CustomerWindowsView, WindowImportView, WindowStatsView

REGENERATE = "make json-docs"  # = .venv/bin/python -m stickerq.cli.json_docs docs/json.md
WIDTH = 96  # the paragraphs' line length


@dataclass(frozen=True, slots=True)
class JsonCommand:
    """One `--json` output: the command as typed, what it prints, and a word on it."""

    command: str  # the section's title, e.g. `campaigns show --json`
    usage: str
    output: Any  # a view, or a list or union of views
    about: str

    @property
    def anchor(self) -> str:
        """GitHub's anchor for the section's heading."""
        return re.sub(r"[^a-z0-9 -]", "", self.command.lower()).replace(" ", "-")


COMMANDS = (
    JsonCommand(
        "send --json",
        "stickerq send ... --json [--at ... | --every ... --tz ZONE]",
        SendOutput,
        "The campaign validated, stored and dispatched (`EnqueueView`); with `--at` or "
        "`--every` stored `scheduled` instead, with its time (`ScheduledView`). Rejected "
        "input (exit 2) prints nothing on stdout: the invalid rows go to stderr.",
    ),
    JsonCommand(
        "send --wait --json",
        "stickerq send ... --wait --json",
        WaitedSendOutput,
        "As `send --json`, printed once the wait is over, with `progress`: as `status --json` "
        "when every message settled (exit 0) or a pause held the rest (exit 3). The live "
        "progress goes to stderr meanwhile.",
    ),
    JsonCommand(
        "status --json",
        "stickerq status CAMPAIGN_ID --json",
        ProgressView,
        "Where a campaign stands, read from its counters (a poll costs the same for a million "
        "recipients): messages by status and by error code, and the pause holding it, if any.",
    ),
    JsonCommand(
        "pauses --json",
        "stickerq pauses --json",
        list[PauseView],
        "The account and sender pauses in force, oldest first; `[]` when none.",
    ),
    JsonCommand(
        "config --json",
        "stickerq config --json",
        ConfigView,
        "The settings in force, one key per setting (its variable is `STICKERQ_` and the key "
        "in capitals), and `accounts_in_force`: the Kaleyra accounts they resolve to. No "
        "api-key is ever shown, nor the passwords in the URLs.",
    ),
    JsonCommand(
        "accounts list --json",
        "stickerq accounts list --json",
        AccountsView,
        "The Kaleyra accounts a campaign may name with `send --account SID`, and where they "
        "come from (the same as `GET /accounts`). Whether each api-key is set, never the key.",
    ),
    JsonCommand(
        "media upload --json",
        "stickerq media upload FILE [--from SENDER] [--account SID] --json",
        MediaUploadView,
        "A sticker file checked (WebP, 512 x 512, at most 100 KB static or 500 KB animated) and "
        "uploaded: its media id, for `send --sticker-id`. A file that breaks a rule prints "
        "nothing on stdout (exit 2): every broken rule goes to stderr.",
    ),
    JsonCommand(
        "campaigns list --json",
        "stickerq campaigns list [--status STATUS] [--limit N] --json",
        list[CampaignView],
        "Campaigns, newest first; with `--status scheduled` in the order they will go.",
    ),
    JsonCommand(
        "campaigns show --json",
        "stickerq campaigns show CAMPAIGN_ID --json",
        CampaignDetailsView,
        "Every field of a campaign, and where its messages stand (`progress`, as in "
        "`status --json` without the campaign's own fields).",
    ),
    JsonCommand(
        "campaigns pause|resume|cancel --json",
        "stickerq campaigns pause|resume|cancel CAMPAIGN_ID --json",
        LifecycleView,
        "What the action did. Repeating one is harmless: `changed` is then false.",
    ),
    JsonCommand(
        "reschedule --json",
        "stickerq reschedule CAMPAIGN_ID --at ... [--tz ZONE] --json",
        RescheduleView,
        "The campaign's new time, while it is still `scheduled`.",
    ),
    JsonCommand(
        "schedules list --json",
        "stickerq schedules list --json",
        list[ScheduleView],
        "Every recurring schedule, stopped ones included, in the order they were made.",
    ),
    JsonCommand(
        "callbacks unknown --json",
        "stickerq callbacks unknown [--limit N] --json",
        list[UnknownCallbackView],
        "Status callbacks whose message_id matched no message, newest first. One that came "
        "before its message_id was written is applied (and leaves this list) once it is.",
    ),
    JsonCommand(
        "report --json",
        "stickerq report CAMPAIGN_ID [--by ref|ref1|ref2] [--top N] --json",
        ReportView,
        "`producer.reports.campaign_report(session, campaign_id, by=None)`. Every number is an "
        "SQL aggregate over the campaign's messages, so a report on a million recipients reads "
        "a handful of rows. Its times, unlike the other commands', are always UTC with "
        "microseconds and a `Z`.",
    ),
    JsonCommand(
        "failures --json",
        "stickerq failures [--campaign ID] [--status S] [--code C] [--since T] [--limit N] "
        "[--show-numbers] --json",
        FailuresView,
        "Parked, failed and unknown messages: counts by status and code, then the messages "
        "(`--limit`, default 50; 0 lists all). `rows` is streamed from the database and is the "
        "last key: a listing of millions never sits in memory. Recipients are masked "
        "(`+91******5678`) unless `--show-numbers`.",
    ),
    JsonCommand(
        "messages show --json",
        "stickerq messages show RECIPIENT|MESSAGE_ID [--show-numbers] --json",
        HistoryView,
        "The whole history of a message, every attempt included: one per campaign for a "
        "recipient, one for a Kaleyra message_id. Recipients masked unless `--show-numbers`.",
    ),
    JsonCommand(
        "requeue --json",
        "stickerq requeue --campaign ID --status S [--code C] [--dry-run] [--resume] --json",
        RequeueView,
        "What a requeue moved back to pending and dispatched, or with `--dry-run` would.",
    ),
    JsonCommand(
        "suppress add|import --json",
        "stickerq suppress add NUMBER... | import FILE [--reason R] [--account SID] --json",
        SuppressResultView,
        "Numbers put on the account's suppression list (`add` refuses them all if one is "
        "invalid; `import` skips invalid rows and lists them by line).",
    ),
    JsonCommand(
        "suppress remove --json",
        "stickerq suppress remove NUMBER... [--account SID] --json",
        UnsuppressView,
        "Numbers taken off the account's suppression list.",
    ),
    JsonCommand(
        "suppress list --json",
        "stickerq suppress list [--account SID] [--after NUMBER] [--limit N] --json",
        SuppressionPageView,
        "A page of the account's suppression list in number order; `next_after` pages on.",
    ),
    JsonCommand(
        "webhooks add --json",
        "stickerq webhooks add URL --events TYPES [--secret S] [--account SID] --json",
        AddedWebhookView,
        "The webhook added and its secret, shown this once.",
    ),
    JsonCommand(
        "webhooks list --json",
        "stickerq webhooks list --json",
        list[WebhookView],
        "Every webhook with its state and its events waiting and failed; `[]` when none.",
    ),
    JsonCommand(
        "webhooks deliveries --json",
        "stickerq webhooks deliveries ID [--failed] [--limit N] --json",
        list[DeliveryView],
        "The webhook's events, newest first, each with how its delivery went.",
    ),
    JsonCommand(
        "window import --json",
        "stickerq window import FILE --json",
        WindowImportView,
        "A CSV of incoming messages (`from`, `wanumber`, `created_at`) stored in the window "
        "ledger, all of it: a file with a bad row stores nothing and prints nothing on stdout "
        "(exit 2), its bad cells going to stderr with their line and column.",
    ),
    JsonCommand(
        "window show --json",
        "stickerq window show NUMBER [--from SENDER] [--show-numbers] --json",
        CustomerWindowsView,
        "A customer's windows with each business number (or `--from`'s), latest message "
        "first, open or not now. The customer is masked unless `--show-numbers`.",
    ),
    JsonCommand(
        "window stats --json",
        "stickerq window stats [--from SENDER] --json",
        WindowStatsView,
        "Per business number, customers in their window now and those whose window ends "
        "within the hour.",
    ),
    JsonCommand(
        "erase --json",
        "stickerq erase NUMBER [--dry-run] --json",
        ErasureView,
        "What erasing a number removed from each table (with `--dry-run`, would remove), "
        "and the messages a worker was sending, which were left (`complete` false: erase "
        "again). The number is shown masked. A number no table holds gives `found` false.",
    ),
    JsonCommand(
        "audit --json",
        "stickerq audit [--since 24h] [--actor NAME] [--limit 100] [--show-numbers] --json",
        AuditPageView,
        "The changes people and API keys made since `--since`, newest first (the same as "
        "`GET /audit`, which needs an admin key). Phone numbers in targets and parameters "
        "are masked unless `--show-numbers`; an erased number is its keyed hash there.",
    ),
    JsonCommand(
        "senders set-rate|reset --json",
        "stickerq senders set-rate NUMBER RATE | reset NUMBER --json",
        SenderRateChangeView,
        "The sender's rate after the change (`reset`: the default, `stored` false).",
    ),
    JsonCommand(
        "senders list --json",
        "stickerq senders list --json",
        SenderRatesView,
        "The numbers with a rate of their own, in number order, and the default.",
    ),
    JsonCommand(
        "keys create --json",
        "stickerq keys create NAME --scope read|send|operate|admin [--account SID] "
        "[--expires 90d] --json",
        NewKeyView,
        "The key made, with its value (`key`): printed this once, only its hash is stored.",
    ),
    JsonCommand(
        "keys list|revoke --json",
        "stickerq keys list --json | keys revoke NAME --json",
        list[KeyView] | KeyView,
        "Every key by name (`list`), or the key revoked (`revoke`): never a key's value.",
    ),
)

INTRO = """\
# JSON output

<!-- Generated from the models in stickerq.producer.views by stickerq/cli/json_docs.py:
edit those, then run `{regenerate}`.
tests/test_json_docs.py fails when this file is out of date. -->

Every command that prints a table also prints it as JSON with `--json`: one JSON object (or
array) on one line of stdout; messages and warnings go to stderr. The schemas below are
stable: keys are only ever added, never renamed or removed; a key whose value is unknown is
present with `null`. Times are ISO 8601 with their offset (`2024-05-01T09:00:05+00:00`,
`2030-06-01T09:30:00+05:30`), and in `report` UTC with microseconds and a `Z`
(`2024-05-01T09:00:05.000000Z`). Exit codes: 0 done, 2 rejected (bad input, unknown
campaign), 1 a service is unreachable (`send --wait`: 3, a pause holds the rest).

Each schema is the JSON Schema (draft 2020-12) of a pydantic model in
`stickerq.producer.views`; a program can validate what it reads with the model itself
(`ReportView.model_validate_json(line)`).

| command | prints | section |
|---|---|---|
"""

REPORT_EXAMPLE = """\
{
  "campaign_id": 7, "name": "spring", "status": "completed", "sender": "+919000000001",
  "recipients": 50,
  "by_status": {"pending": 0, "sending": 0, "sent": 45, "delivered": 0, "read": 0,
                "parked": 0, "failed": 3, "unknown": 2, "cancelled": 0,
                "expired": 0},
  "by_code": {"WA400": 3},
  "succeeded": 45, "success_rate": 0.9, "attempts": 50,
  "sent": 45, "delivered": 0, "read": 0,
  "created_at": "2024-05-01T09:00:00.000000Z", "started_at": "2024-05-01T09:00:00.120000Z",
  "finished_at": "2024-05-01T09:00:02.500000Z",
  "first_sent_at": "2024-05-01T09:00:00.180000Z", "last_sent_at": "2024-05-01T09:00:02.430000Z",
  "duration_seconds": 2.38, "pace": {"rate_per_second": 21.0, "remaining": 0, "eta_at": null},
  "breakdown": {
    "by": "ref1", "top": 1, "group_count": 4,
    "groups": [{"value": "north", "recipients": 13,
                "by_status": {"pending": 0, "sending": 0, "sent": 12, "delivered": 0, "read": 0,
                              "parked": 0, "failed": 1, "unknown": 0, "cancelled": 0,
                              "expired": 0},
                "succeeded": 12, "success_rate": 0.923}],
    "other": {"groups": 3, "recipients": 37,
              "by_status": {"pending": 0, "sending": 0, "sent": 33, "delivered": 0, "read": 0,
                            "parked": 0, "failed": 2, "unknown": 2, "cancelled": 0,
                            "expired": 0},
              "succeeded": 33, "success_rate": 0.892}
  },
  "outside_window": {"messages": 0, "advice": null}
}
"""

EXPORT_ROW = (
    "| `stickerq export CAMPAIGN_ID --csv PATH\\|-` | CSV, not JSON | [export.md](export.md) |\n"
)
EXAMPLES = {"report --json": ("stickerq report 7 --by ref1 --top 1 --json", REPORT_EXAMPLE)}


def render() -> str:
    """The whole of docs/json.md."""
    parts = [INTRO.format(regenerate=REGENERATE)]
    for entry in COMMANDS:
        prints = "array" if _is_list(entry.output) else "object"
        usage, command = (text.replace("|", "\\|") for text in (entry.usage, entry.command))
        parts.append(f"| `{usage}` | {prints} | [{command}](#{entry.anchor}) |\n")
    parts.append(EXPORT_ROW)
    parts.extend(section(entry) for entry in COMMANDS)
    return "".join(parts)


def section(entry: JsonCommand) -> str:
    """One command's part of the file: its heading, usage, paragraph and schema."""
    about = textwrap.fill(entry.about, WIDTH, break_on_hyphens=False)
    text = f"\n## `{entry.command}`\n\n`{entry.usage}`\n\n{about}\n"
    if entry.command in EXAMPLES:
        typed, example = EXAMPLES[entry.command]
        text += f"\nExample (`{typed}`, indented and rounded here):\n\n```json\n{example}```\n"
    schema = _layout(json_schema(entry.output))
    return text + f"\nSchema:\n\n```json\n{schema}\n```\n"


def _layout(schema: Any, indent: str = "") -> str:
    """An object schema over several lines, each of its fields on one: readable, and short."""
    if not isinstance(schema, dict) or not ("properties" in schema or "$defs" in schema):
        return json.dumps(schema)
    inner = indent + "  "
    lines = []
    for key, value in schema.items():
        if key in ("properties", "$defs"):  # one line per field or definition
            entries = [
                f"{inner}  {json.dumps(k)}: {_layout(v, inner + '  ')}" for k, v in value.items()
            ]
            text = "{\n" + ",\n".join(entries) + f"\n{inner}}}"
        else:
            text = _layout(value, inner)
        lines.append(f"{inner}{json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(lines) + f"\n{indent}}}"


def _is_list(output: Any) -> bool:
    return get_origin(output) is list


def main(argv: list[str]) -> None:
    target = Path(argv[0] if argv else "docs/json.md")
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
