"""How fast the HTTP API takes Kaleyra's status callbacks: callbacks/s and answer latency.

    .venv/bin/python bench/callbacks.py [--runs 3] [--rate 3000] [--seconds 5]
                                        [--concurrency 64] [--max-seconds 3] [--backend postgresql]

`stickerq api` runs as a process of its own (uvicorn, one process) on a database of this run's
own, holding enough `sent` messages for every callback. This process is the caller (aiohttp,
loopback only). Per run, after the machine is quiet:

- at rate: callbacks offered at --rate per second for --seconds, open loop (each is due at its
  own time, however slow the answers are); latency runs from when a callback was due to its
  answer, so a server that falls behind shows it. The answer comes once the callback is
  committed (group commit), so this is the time to durable.
- max: --concurrency callers post back to back for --max-seconds; callbacks/s answered.

Each message gets `delivered` then `read`; afterwards every message must be `read` (nothing
lost). Targets (issue 14): >= 3,000 callbacks/s (max), p99 <= 50 ms (at rate).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import Target, fmt, median, print_table, print_targets

SECRET = "bench-callback-secret-8c1e"
TARGET_PER_SECOND = 3_000
TARGET_P99_MS = 50.0


def payload(message_id: str, status: str, at: int) -> bytes:
    return json.dumps(
        {
            "status": status,
            "message_id": message_id,
            "extra_info": {"message_id": message_id, "ref": "bench"},
            "meta_object": {
                "value": {"statuses": [{"id": "wamid.b", "status": status, "timestamp": str(at)}]}
            },
        }
    ).encode()


def callbacks_for(first: int, messages: int) -> list[tuple[str, bytes]]:
    """(status, body): delivered for each message, then read for each."""
    at = int(time.time())
    ids = [f"BENCH{n}" for n in range(first, first + messages)]
    return [("delivered", payload(i, "delivered", at)) for i in ids] + [
        ("read", payload(i, "read", at + 1)) for i in ids
    ]


def seed_messages(url: str, count: int) -> None:
    from sqlalchemy import insert

    from stickerq.db import open_sessions
    from stickerq.models import Campaign, Message
    from stickerq.states import MessageStatus

    with open_sessions(url) as sessions, sessions.begin() as session:
        campaign = Campaign(name="bench", sid=common.SID, sender=common.SENDER, sticker_id="1")
        session.add(campaign)
        session.flush()
        for start in range(0, count, 5_000):
            rows = [
                {
                    "campaign_id": campaign.id,
                    "recipient": f"+9198{n:08d}",
                    "status": MessageStatus.SENT,
                    "message_id": f"BENCH{n}",
                }
                for n in range(start, min(count, start + 5_000))
            ]
            session.execute(insert(Message), rows)


def landed(url: str) -> dict[str, int]:
    """Messages the database shows delivered (or read) and read."""
    from sqlalchemy import func, select

    from stickerq.db import open_sessions
    from stickerq.models import Message
    from stickerq.states import MessageStatus

    with open_sessions(url) as sessions, sessions() as session:
        read = select(func.count()).where(Message.status == MessageStatus.READ)
        delivered = select(func.count()).where(Message.delivered_at.is_not(None))
        return {"read": session.scalar(read) or 0, "delivered": session.scalar(delivered) or 0}


Bodies = list[tuple[str, bytes]]
HEADERS = {"content-type": "application/json"}


async def at_rate(url: str, bodies: Bodies, rate: float, acked: Counter[str]) -> dict[str, Any]:
    """Open loop: body n is due at start + n / rate; latency counts from when it was due."""
    import aiohttp

    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1024)) as session:
        start = time.perf_counter()

        async def one(status: str, body: bytes, due: float) -> None:
            async with session.post(url, data=body, headers=HEADERS) as answer:
                await answer.read()
                acked[status if answer.status == 200 else "non-200"] += 1
            latencies.append(time.perf_counter() - due)

        tasks = []
        for n, (status, body) in enumerate(bodies):
            due = start + n / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(status, body, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "answered": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


async def flat_out(
    url: str, bodies: Bodies, concurrency: int, seconds: float, acked: Counter[str]
) -> dict[str, Any]:
    """Closed loop: `concurrency` callers post back to back until `seconds` have passed."""
    import aiohttp

    latencies: list[float] = []
    queue = iter(bodies)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        deadline = start + seconds

        async def caller() -> None:
            for status, body in queue:
                sent = time.perf_counter()
                async with session.post(url, data=body, headers=HEADERS) as answer:
                    await answer.read()
                    acked[status if answer.status == 200 else "non-200"] += 1
                latencies.append(time.perf_counter() - sent)
                if time.perf_counter() > deadline:
                    return

        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {
        "answered": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
    }


def one_run(args: argparse.Namespace, url: str, prefix: str) -> dict[str, Any]:
    warm_messages = 200
    rate_messages = int(args.rate * args.seconds) // 2
    flat_messages = int(args.max_seconds * 10_000)  # more than one API process answers
    seed_messages(url, warm_messages + rate_messages + flat_messages)
    warm = callbacks_for(0, warm_messages)
    rated = callbacks_for(warm_messages, rate_messages)
    flat = callbacks_for(warm_messages + rate_messages, flat_messages)
    settings = common.make_settings(url, prefix, "http://127.0.0.1:9", callback_secret=SECRET)
    port = common.free_port()
    argv = [common.PY, "-m", "stickerq", "api", "--port", str(port)]
    api = common.spawn(argv, common.child_env(settings.as_environment()), "api")
    base = f"http://127.0.0.1:{port}"
    target = f"{base}/callbacks/kaleyra/{SECRET}"
    acked: Counter[str] = Counter()
    try:
        common.wait_until(lambda: _answers(base + "/healthz"), 30, alive=[api], what="API up")
        asyncio.run(flat_out(target, warm, 16, 30.0, acked))
        common.wait_for_quiet()
        gc.collect()
        gc.freeze()  # this caller's own full collections must not stall the timed part
        meter = common.CpuMeter({"api": [api.pid]})
        with common.profiled([api.pid], args.profile, args.profile_format):
            rate_figures = asyncio.run(at_rate(target, rated, args.rate, acked))
        cpu = meter.stop()
        common.wait_for_quiet()
        max_figures = asyncio.run(flat_out(target, flat, args.concurrency, args.max_seconds, acked))
        common.check_alive([api])
    finally:
        common.stop_processes([api])
    return {
        "rate": rate_figures,
        "max": max_figures,
        "cpu_line": common.cpu_line(cpu, max(1, rate_figures["answered"])),
        "acked": dict(acked),
        "landed": landed(url),
    }


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=TARGET_PER_SECOND, help="offered per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="of the at-rate part")
    parser.add_argument("--concurrency", type=int, default=64, help="callers of the max part")
    parser.add_argument("--max-seconds", type=float, default=3.0, help="of the max part")
    parser.add_argument("--no-wait-quiet", action="store_true")
    parser.add_argument("--json", type=Path, help="keep every figure here")
    parser.add_argument("--profile", type=Path, help="py-spy the API during the at-rate part")
    parser.add_argument("--profile-format", default="raw")
    args = parser.parse_args()
    if args.seconds > 30 or args.max_seconds > 30 or args.runs > 5:
        parser.error("keep it short: --seconds and --max-seconds <= 30, --runs <= 5")
    common.QUIET["enabled"] = not args.no_wait_quiet
    print(common.machine_line())
    runs = []
    for number in range(1, args.runs + 1):
        with common.bench_database("callbacks") as url, common.redis_prefix("callbacks") as prefix:
            common.log(f"run {number}: {args.rate:,.0f}/s for {args.seconds}s, then flat out")
            runs.append(one_run(args, url, prefix))
        print(f"  run {number}: {runs[-1]['cpu_line']}")
    rows = []
    for n, run in enumerate(runs, start=1):
        rate, top, acked, landed_ = run["rate"], run["max"], run["acked"], run["landed"]
        # every callback answered 200 must be in the database
        kept = all(landed_[status] >= acked.get(status, 0) for status in ("read", "delivered"))
        lost = "none" if kept else "SOME"
        rows.append(
            [
                str(n),
                fmt(rate["per_second"]),
                fmt(rate["p50_ms"], ".1f"),
                fmt(rate["p99_ms"], ".1f"),
                fmt(rate["max_ms"], ".1f"),
                str(acked.get("non-200", 0)),
                fmt(top["per_second"]),
                fmt(top["p50_ms"], ".1f"),
                lost,
            ]
        )
    p99 = median([r["rate"]["p99_ms"] for r in runs])
    top = median([r["max"]["per_second"] for r in runs])
    rows.append(["median", "", fmt(median([r["rate"]["p50_ms"] for r in runs]), ".1f"),
                 fmt(p99, ".1f"), "", "", fmt(top), "", ""])  # fmt: skip
    columns = ["run", "at rate /s", "p50 ms", "p99 ms", "max ms", "non-200", "max /s",
               "max p50 ms", "lost"]  # fmt: skip
    print_table(f"callbacks: {args.rate:,.0f}/s offered, then {args.concurrency} callers flat out",
                columns, rows)  # fmt: skip
    top_figure = f"{top:,.0f} (>= {TARGET_PER_SECOND:,})"
    p99_figure = f"{p99:.1f} ms at {args.rate:,.0f}/s offered (<= {TARGET_P99_MS:.0f})"
    print_targets(
        [
            Target("callbacks/s", top >= TARGET_PER_SECOND, top_figure),
            Target("p99 answer", p99 <= TARGET_P99_MS, p99_figure),
        ]
    )
    common.dump_json(args.json, runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
