"""`send --wait`'s progress: it says so when no worker claims anything, instead of waiting
silently for ever; and its rate and ETA are those of `campaigns show` and `report`."""

from __future__ import annotations

import io
import json
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import Result
from rich.console import Console
from sqlalchemy import select, update
from typer.testing import CliRunner

from stickerq.cli import app
from stickerq.cli.watch import watch_campaign
from stickerq.db import make_engine, make_session_factory
from stickerq.models import Campaign, Message, utcnow
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.settings import Settings
from tests.conftest import STICKER_ID

HINT = "is a worker running on this Redis and prefix?"


def watch(settings: Settings, campaign_id: int) -> str:
    out = io.StringIO()
    engine = make_engine(settings.database_url)
    try:
        watch_campaign(
            make_session_factory(engine),
            campaign_id,
            Console(file=out, width=200),
            poll_seconds=0.05,
            timeout_seconds=1.0,
            no_worker_hint=HINT,
            hint_after_seconds=0.3,
        )
    finally:
        engine.dispose()
    return out.getvalue()


def test_a_campaign_nobody_claims_gets_the_no_worker_hint_once(settings: Settings) -> None:
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to="+919812345678")
    ).campaign_id
    shown = watch(settings, campaign_id)  # no worker runs
    assert shown.count(HINT) == 1
    assert "nothing claimed for" in shown


def test_a_campaign_being_sent_gets_no_hint(settings: Settings) -> None:
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to="+919812345678")
    ).campaign_id
    engine = make_engine(settings.database_url)
    with make_session_factory(engine).begin() as session:  # as a first claim leaves it
        session.execute(update(Campaign).values(status="running"))
    engine.dispose()
    assert HINT not in watch(settings, campaign_id)


def run(settings: Settings, *args: str) -> Result:
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("STICKERQ_")}
    env.update(settings.as_environment(), COLUMNS="200")
    return CliRunner().invoke(app, list(args), env=env)


def json_pace(settings: Settings, *command: str) -> dict[str, Any]:
    result = run(settings, *command, "--json")
    assert result.exit_code == 0, result.output
    pace: dict[str, Any] = json.loads(result.stdout)["pace"]
    return pace


def test_the_bar_campaigns_show_and_the_report_give_one_rate_and_eta(settings: Settings) -> None:
    """One campaign state on three screens: 36 of 40 messages settled in the 100 s since it
    started, so 0.36 msg/s and the last 4 in about 11 s. (The bar counted sent messages over
    the seconds it had watched, and the report over first -> last sent_at, with no ETA.)"""
    recipients = ",".join(f"+91981234{n:04d}" for n in range(40))
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=recipients)
    ).campaign_id
    engine = make_engine(settings.database_url)
    with make_session_factory(engine).begin() as session:
        started = utcnow() - timedelta(seconds=100)
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(status="running", started_at=started)
        )
        first_36 = (
            select(Message.id)
            .where(Message.campaign_id == campaign_id)
            .order_by(Message.id)
            .limit(36)
            .scalar_subquery()
        )
        session.execute(
            update(Message)
            .where(Message.id.in_(first_36))
            .values(status="sent", sent_at=started + timedelta(seconds=99))
        )
    engine.dispose()

    bar = watch(settings, campaign_id)
    shown = json_pace(settings, "campaigns", "show", str(campaign_id))
    reported = json_pace(settings, "report", str(campaign_id))

    bar_rate = re.findall(r"([\d.,]+) msg/s", bar)[-1]
    bar_eta = re.findall(r"ETA (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", bar)[-1]
    assert shown["remaining"] == reported["remaining"] == 4
    # Each read at its own time: the rate drifts by 1 % a second, the ETA by about a second.
    assert shown["rate_per_second"] == pytest.approx(0.36, rel=0.05)
    assert reported["rate_per_second"] == pytest.approx(shown["rate_per_second"], rel=0.03)
    assert bar_rate == f"{shown['rate_per_second']:,.1f}" == "0.4"
    etas = [
        datetime.strptime(bar_eta, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC),
        datetime.fromisoformat(shown["eta_at"]),
        datetime.fromisoformat(reported["eta_at"]),
    ]
    assert max(etas) - min(etas) < timedelta(seconds=6)
    assert abs(etas[1] - (utcnow() + timedelta(seconds=11))) < timedelta(seconds=6)
