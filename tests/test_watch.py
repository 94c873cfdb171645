"""`send --wait`'s progress: it says so when no worker claims anything, instead of waiting
silently for ever."""

from __future__ import annotations

import io

from rich.console import Console
from sqlalchemy import update

from stickerq.cli.watch import watch_campaign
from stickerq.db import make_engine, make_session_factory
from stickerq.models import Campaign
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
