"""A number suppressed after its campaign was enqueued is not sent: through a real Celery
worker and the sandbox, on both backends, the message ends `suppressed` and the sandbox never
sees it; another account's list does not count; a campaign left with nothing else to send
completes."""

from __future__ import annotations

from collections.abc import Callable

from stickerq.producer.api import enqueue_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.producer.suppressions import add_numbers
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import CampaignStatus, MessageStatus
from tests.conftest import STICKER_ID, make_settings, wait_until
from tests.helpers import Db

KEPT, LATE, ALONE = "+919812345670", "+919812345671", "+919812345672"


def test_a_number_suppressed_after_enqueue_is_never_sent(
    database_url: str,
    redis_prefix: str,
    sandbox: SandboxServer,
    run_worker: Callable[[Settings], None],
) -> None:
    settings = make_settings(database_url, redis_prefix, sandbox.url)
    mixed = enqueue_campaign(settings, CampaignRequest(sticker_id=STICKER_ID, to=f"{KEPT},{LATE}"))
    alone = enqueue_campaign(settings, CampaignRequest(sticker_id=STICKER_ID, to=ALONE))
    assert (mixed.suppressed, alone.suppressed) == (0, 0)
    add_numbers(
        settings, [LATE, ALONE], "replied STOP", actor="tester"
    )  # after the enqueue, before the send
    add_numbers(
        settings, [KEPT], account="HXANOTHERACCOUNT", actor="tester"
    )  # another account's list

    run_worker(settings)
    db = Db(settings)
    try:
        for campaign_id in (mixed.campaign_id, alone.campaign_id):
            wait_until(lambda c=campaign_id: db.campaign(c).status == CampaignStatus.COMPLETED)
            db.assert_counters_exact(campaign_id)
        assert db.message(mixed.campaign_id, KEPT).status == MessageStatus.SENT
        for campaign_id, recipient in ((mixed.campaign_id, LATE), (alone.campaign_id, ALONE)):
            message = db.message(campaign_id, recipient)
            assert message.status == MessageStatus.SUPPRESSED
            assert (message.attempts, message.message_id, message.claim_token) == (0, None, None)
            assert db.attempts(message.id) == []
        assert [row["recipient"] for row in sandbox.accepted()] == [KEPT]
    finally:
        db.close()
