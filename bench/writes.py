"""What the database costs a worker: CPU per message to claim a batch, record what may leave,
and write its results.

    .venv/bin/python bench/writes.py [--runs 3] [--batch-size 200] [--batches 30]
                                     [--leaving-group 5]

On a PostgreSQL database of this run's own, one campaign of batch-size x batches recipients
is enqueued; then, batch after batch, this process claims it (`worker.claims.claim`),
records the leaving of its messages in groups of --leaving-group (`worker.leaving.
MarkWriter`: what a worker process gathers in 5 ms at ~1,000 msgs/s) and writes a sent
result with one attempt per message (`worker.results.write_results`), each in its own
transaction, as a worker does. Figures: this process's CPU time (what the worker
would spend) and wall time per message, medians over the batches after the first 3, then
the medians of the runs. The sending itself is left out: compare with the worker's CPU per
message that bench/throughput.py prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import STICKER_ID, fmt, median, print_table

WARM_BATCHES = 3  # not counted: connection pool, statement caches


def measure(batch_size: int, batches: int, leaving_group: int) -> dict[str, float]:
    from sqlalchemy import select

    from stickerq.db import make_engine, make_session_factory
    from stickerq.models import Message, utcnow
    from stickerq.producer.api import enqueue_campaign
    from stickerq.producer.request import CampaignRequest
    from stickerq.states import MessageStatus
    from stickerq.worker.claims import claim
    from stickerq.worker.leaving import MarkWriter
    from stickerq.worker.results import AttemptRecord, MessageResult, write_results

    timings: dict[str, list[float]] = {
        "claim_cpu": [],
        "leaving_cpu": [],
        "leaving_wall": [],
        "write_cpu": [],
        "write_wall": [],
    }
    with common.bench_database("writes") as url, common.redis_prefix("writes") as prefix:
        settings = common.make_settings(url, prefix, "http://127.0.0.1:9/")
        recipients = ",".join(f"+9198{10_000_000 + n:08d}" for n in range(batch_size * batches))
        campaign_id = enqueue_campaign(
            settings, CampaignRequest(sticker_id=STICKER_ID, to=recipients)
        ).campaign_id
        common.forget_redis_keys(prefix)  # the dispatched batches: this script claims them
        engine = make_engine(url, pool_pre_ping=False)  # as a worker's runtime makes it
        sessions = make_session_factory(engine)
        marks = MarkWriter(engine)  # as a worker's leaving thread writes them
        with sessions() as session:
            ids = list(session.scalars(select(Message.id).order_by(Message.id)))
        for number in range(batches):
            token = f"bench-{number}"
            started = time.process_time()
            with sessions.begin() as session:
                batch = ids[number * batch_size : (number + 1) * batch_size]
                claimed = claim(session, campaign_id, batch, token)
            timings["claim_cpu"].append(time.process_time() - started)
            started, wall_started = time.process_time(), time.perf_counter()
            pks = [message.pk for message in claimed]
            for start in range(0, len(pks), leaving_group):
                marks.write({token: pks[start : start + leaving_group]})
            timings["leaving_cpu"].append(time.process_time() - started)
            timings["leaving_wall"].append(time.perf_counter() - wall_started)
            now = utcnow()
            attempt = AttemptRecord(1, now, 100.0, 202, "WA202", "sent", None)
            results = [
                MessageResult(
                    pk=message.pk,
                    status=MessageStatus.SENT,
                    attempts=[attempt],
                    total_attempts=1,
                    delayed_retries=0,
                    message_id=f"bench-{message.pk:012d}-{'x' * 24}",
                )
                for message in claimed
            ]
            started, wall_started = time.process_time(), time.perf_counter()
            with sessions.begin() as session:
                write_results(session, token, results)
            timings["write_cpu"].append(time.process_time() - started)
            timings["write_wall"].append(time.perf_counter() - wall_started)
        marks.close()
        engine.dispose()
    return {
        name: median(values[WARM_BATCHES:]) * 1000 / batch_size for name, values in timings.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=common.worker_default("batch_size"),
        help="STICKERQ_BATCH_SIZE",
    )
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--leaving-group", type=int, default=5)
    args = parser.parse_args()
    if args.batches <= WARM_BATCHES:
        parser.error(f"--batches must be more than {WARM_BATCHES}")
    print(common.machine_line())
    runs = [measure(args.batch_size, args.batches, args.leaving_group) for _ in range(args.runs)]
    columns = [
        "run",
        "claim CPU ms/msg",
        "leaving CPU ms/msg",
        "leaving wall ms/msg",
        "write CPU ms/msg",
        "write wall ms/msg",
    ]
    rows = [[str(n), *(fmt(r[k], ".3f") for k in r)] for n, r in enumerate(runs, start=1)]
    rows.append(["median", *(fmt(median([r[k] for r in runs]), ".3f") for k in runs[0])])
    print_table(f"claim and write, batches of {args.batch_size}, PostgreSQL", columns, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
