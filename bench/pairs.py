"""The pair guard's Redis cost per message: a batch's reservations in one tick, and one alone.

    .venv/bin/python bench/pairs.py [--runs 3] [--batch 200] [--batches 50]

Against the real Redis (STICKERQ_BENCH_REDIS_URL), under a key prefix of its own, deleted
after. Prints wall microseconds per message for: a batch's reservations asked in one loop
tick (one script call), and reservations asked one after another (one round trip each, the
cost of a late token's confirmation).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import redis
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REDIS_URL

from stickerq.worker.pairs import PairGuard

SENDER = "+919000000001"


async def one_run(prefix: str, batch: int, batches: int) -> tuple[float, float]:
    client = aioredis.Redis.from_url(REDIS_URL)
    guard = PairGuard(client, prefix, 6.0)
    stop = asyncio.Event()
    recipients = [f"+9198{n:08d}" for n in range(batch * batches)]
    started = time.perf_counter()
    for b in range(batches):
        chunk = recipients[b * batch : (b + 1) * batch]
        await asyncio.gather(*(guard.reserve(SENDER, r, f"o{b}", stop) for r in chunk))
    together = (time.perf_counter() - started) / len(recipients)
    started = time.perf_counter()
    for r in recipients[:batch]:
        await guard.reserve(SENDER, r + "1", "alone", stop)
    alone = (time.perf_counter() - started) / batch
    await client.aclose()
    return together * 1e6, alone * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args()
    prefix = f"stickerq-bench-pairs:{uuid.uuid4().hex[:8]}:"
    figures = []
    try:
        for run in range(args.runs):
            together, alone = asyncio.run(one_run(prefix + f"{run}:", args.batch, args.batches))
            figures.append((together, alone))
            print(f"run {run + 1}: {together:.1f} us/message in one tick, {alone:.1f} alone")
    finally:
        sync = redis.Redis.from_url(REDIS_URL)
        keys = list(sync.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            sync.delete(*keys[start : start + 1000])
    together = statistics.median(f[0] for f in figures)
    alone = statistics.median(f[1] for f in figures)
    print(f"median: {together:.1f} us/message in one tick, {alone:.1f} us/message alone")


if __name__ == "__main__":
    main()
