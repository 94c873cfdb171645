"""Our own infrastructure failing is never a message's failure: with Redis or PostgreSQL
unreachable the worker stops sending, retries, and finishes the campaign by itself."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from tests.conftest import wait_until
from tests.helpers import Db
from tests.relay import TcpRelay
from tests.worker.conftest import Workers
from tests.worker.test_faults import assert_nothing_lost_nothing_twice, enqueue, sent_count

pytestmark = pytest.mark.serial  # restarts or kills shared services, or times them: alone

OUTAGE_RECIPIENTS = 1000  # 200 before the cut, the rest (4 s at 200/s) after it


def test_redis_outage_mid_campaign_pauses_sending_and_nothing_fails(
    fault_settings: Settings, sandbox: SandboxServer, workers: Workers
) -> None:
    relay = TcpRelay("127.0.0.1", 6379).start()
    settings = fault_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{relay.port}/0"})
    sandbox.configure(latency_ms=100)
    db = Db(settings)
    campaign_id = enqueue(settings, OUTAGE_RECIPIENTS)
    workers.start(settings, "--beat")
    wait_until(lambda: sent_count(db, campaign_id) >= 200, timeout=60, interval=0.1)

    relay.cut()
    time.sleep(1.0)  # what was in flight settles
    during = sandbox.stats()["requests"]
    time.sleep(3.0)
    assert sandbox.stats()["requests"] == during  # fail closed: no token, no send
    sandbox.configure(latency_ms=20)  # the rest goes out quicker: the bounds were on the cut
    relay.restore()

    wait_until(lambda: db.settled(campaign_id), timeout=120, interval=0.5)
    counts = assert_nothing_lost_nothing_twice(db, campaign_id, sandbox)
    assert MessageStatus.FAILED not in counts
    assert counts[MessageStatus.SENT] + counts.get(MessageStatus.UNKNOWN, 0) == OUTAGE_RECIPIENTS
    relay.cut()
    db.close()


def test_postgresql_restart_mid_campaign_completes_with_nothing_failed(
    fault_settings: Settings, sandbox: SandboxServer, workers: Workers
) -> None:
    sandbox.configure(latency_ms=100)
    db = Db(fault_settings)
    campaign_id = enqueue(fault_settings, 1500)
    workers.start(fault_settings, "--beat")
    wait_until(lambda: sent_count(db, campaign_id) >= 200, timeout=60, interval=0.1)

    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        timeout=60,
    )
    db.engine.dispose()  # this test's own pooled connections died with the server
    sandbox.configure(latency_ms=20)  # the rest goes out quicker

    wait_until(lambda: db.settled(campaign_id), timeout=120, interval=0.5)
    counts = assert_nothing_lost_nothing_twice(db, campaign_id, sandbox)
    assert MessageStatus.FAILED not in counts
    assert counts[MessageStatus.SENT] + counts.get(MessageStatus.UNKNOWN, 0) == 1500
    db.close()
