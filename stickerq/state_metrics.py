"""The gauges read from the database and Redis at scrape time: queue depth, pauses in force,
campaigns by status, beat's last run.

Each scrape costs two indexed queries (pauses in force: the partial unique index; campaigns:
the (status, scheduled_at) index) and a few Redis reads, whatever the number of messages.
A source that cannot be reached is reported as `stickerq_state_up{source=...} 0` and its
gauges are left out, rather than failing the scrape.
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from stickerq.db import open_sessions
from stickerq.keys import beat_seen_key
from stickerq.models import Campaign, Pause
from stickerq.queue import queued_tasks
from stickerq.redis_client import Purpose, make_redis
from stickerq.settings import Settings


class StateCollector(Collector):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # a scrape must not wait long on a Redis that does not answer
        self.redis = make_redis(settings.redis_target, purpose=Purpose.GLANCE)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "stickerq_state_up",
            "Whether the last scrape could read the database and Redis (1) or not (0)",
            labels=["source"],
        )
        try:
            database = list(self._from_database())
        except SQLAlchemyError:
            database = []
        up.add_metric(["database"], 1 if database else 0)
        try:
            from_redis = list(self._from_redis())
        except redis.RedisError:
            from_redis = []
        up.add_metric(["redis"], 1 if from_redis else 0)
        yield up
        yield from database
        yield from from_redis

    def _from_database(self) -> Iterator[Metric]:
        pauses = GaugeMetricFamily(
            "stickerq_pauses_in_force",
            "Account and sender pauses in force, by scope and the code that caused them",
            labels=["scope", "code"],
        )
        campaigns = GaugeMetricFamily(
            "stickerq_campaigns", "Campaigns by status", labels=["status"]
        )
        with open_sessions(self.settings.database_url) as sessions, sessions() as session:
            in_force = session.execute(
                select(Pause.scope, Pause.code, func.count())
                .where(Pause.resumed_at.is_(None))
                .group_by(Pause.scope, Pause.code)
            ).all()
            by_status = session.execute(
                select(Campaign.status, func.count()).group_by(Campaign.status)
            ).all()
        for scope, code, number in in_force:
            # codes of the contract that pause (E110, WA401, WAV2101, RBC001, WA-401)
            pauses.add_metric([scope, code], number)
        for status, number in by_status:
            campaigns.add_metric([status], number)
        yield pauses
        yield campaigns

    def _from_redis(self) -> Iterator[Metric]:
        prefix = self.settings.redis_prefix
        depth = queued_tasks(self.redis, prefix)
        seen = self.redis.get(beat_seen_key(prefix))
        yield GaugeMetricFamily(
            "stickerq_queue_depth",
            "send_batch tasks waiting in the send queues",
            value=depth,
        )
        yield GaugeMetricFamily(
            "stickerq_beat_last_run_timestamp_seconds",
            "Unix time of beat's last dispatch run; 0 when none ran in the last minute",
            value=float(seen) if seen else 0.0,
        )
