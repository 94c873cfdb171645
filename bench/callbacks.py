"""How fast the HTTP API takes Kaleyra's status callbacks: callbacks/s and answer latency.

    .venv/bin/python bench/callbacks.py [--runs 3] [--rate 3000] [--seconds 5]
                                        [--concurrency 64] [--max-seconds 3] [--incoming]

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

`--incoming` (issue 25, same targets) also measures the incoming-message callbacks
(`POST .../{secret}/incoming`, Kaleyra's shape with a body and a name the API ignores) on the
same API process in the same run: distinct customers spread over three business numbers, each
customer's message, then a second one a minute later (the ledger row's insert, then its
update). The status part and the incoming part take turns going first; each is warmed with
200 pairs. Afterwards the window ledger must hold every pair and later time answered 200.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import Target, fmt, median, print_table, print_targets

SECRET = "bench-callback-secret-8c1e"
BUSINESS_NUMBERS = ("919000000001", "919000000002", "919000000003")  # as Kaleyra writes them
AGAIN_SECONDS = 60  # between a customer's two messages
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


def incoming_payload(customer: str, wanumber: str, at: int, n: int) -> bytes:
    return json.dumps(
        {
            "from": customer,
            "wanumber": wanumber,
            "created_at": str(at),
            "type": "text",
            "body": f"Hi, is order {n} on its way?",
            "name": f"Customer {n}",
        }
    ).encode()


def incoming_for(first: int, customers: int, at: int) -> list[tuple[str, bytes]]:
    """(kind, body): each customer's message to one of the business numbers at `at`, then
    each one's second message AGAIN_SECONDS later."""
    pairs = [
        (n, f"9197{n:08d}", BUSINESS_NUMBERS[n % len(BUSINESS_NUMBERS)])
        for n in range(first, first + customers)
    ]
    return [("first", incoming_payload(c, w, at, n)) for n, c, w in pairs] + [
        ("again", incoming_payload(c, w, at + AGAIN_SECONDS, n)) for n, c, w in pairs
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


def ledger_landed(url: str, at: int) -> dict[str, int]:
    """Pairs the window ledger holds, and those holding the second message's time."""
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from stickerq.db import open_sessions
    from stickerq.models import CustomerWindow

    again = datetime.fromtimestamp(at + AGAIN_SECONDS, UTC)
    with open_sessions(url) as sessions, sessions() as session:
        pairs = select(func.count()).select_from(CustomerWindow)
        later = pairs.where(CustomerWindow.last_inbound_at == again)
        return {"first": session.scalar(pairs) or 0, "again": session.scalar(later) or 0}


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


@dataclass
class Part:
    """One kind of callback: its URL, its warm-up, at-rate and flat-out bodies."""

    target: str
    warm: Bodies
    rated: Bodies
    flat: Bodies
    acked: Counter[str] = field(default_factory=Counter)


def one_run(args: argparse.Namespace, url: str, prefix: str, number: int) -> dict[str, Any]:
    warm_messages = 200
    rate_messages = int(args.rate * args.seconds) // 2
    flat_messages = int(args.max_seconds * 10_000)  # more than one API process answers
    seed_messages(url, warm_messages + rate_messages + flat_messages)
    settings = common.make_settings(url, prefix, "http://127.0.0.1:9", callback_secret=SECRET)
    port = common.free_port()
    argv = [common.PY, "-m", "stickerq", "api", "--port", str(port)]
    api = common.spawn(argv, common.child_env(settings.as_environment()), "api")
    base = f"http://127.0.0.1:{port}"
    target = f"{base}/callbacks/kaleyra/{SECRET}"
    parts = {
        "status": Part(
            target,
            callbacks_for(0, warm_messages),
            callbacks_for(warm_messages, rate_messages),
            callbacks_for(warm_messages + rate_messages, flat_messages),
        )
    }
    inbound_at = int(time.time()) - 3600
    if args.incoming:
        parts["incoming"] = Part(
            target + "/incoming",
            incoming_for(0, warm_messages, inbound_at),
            incoming_for(warm_messages, rate_messages, inbound_at),
            incoming_for(warm_messages + rate_messages, flat_messages, inbound_at),
        )
    order = list(parts) if number % 2 else list(reversed(parts))
    figures: dict[str, dict[str, Any]] = {}
    try:
        common.wait_until(lambda: _answers(base + "/healthz"), 30, alive=[api], what="API up")
        for part in parts.values():
            asyncio.run(flat_out(part.target, part.warm, 16, 30.0, part.acked))
        for name in order:
            profile = args.profile
            if profile is not None and args.incoming:
                profile = profile.with_name(f"{profile.name}-{name}")
            figures[name] = timed_part(args, api, parts[name], profile)
    finally:
        common.stop_processes([api])
    result = figures["status"] | {"landed": landed(url)}
    if args.incoming:
        result["incoming"] = figures["incoming"] | {"landed": ledger_landed(url, inbound_at)}
    return result


def timed_part(
    args: argparse.Namespace, api: Any, part: Part, profile: Path | None
) -> dict[str, Any]:
    """The at-rate part, then the flat-out part, each after the machine is quiet."""
    common.wait_for_quiet()
    gc.collect()
    gc.freeze()  # this caller's own full collections must not stall the timed part
    meter = common.CpuMeter({"api": [api.pid]})
    with common.profiled([api.pid], profile, args.profile_format):
        rate_figures = asyncio.run(at_rate(part.target, part.rated, args.rate, part.acked))
    cpu = meter.stop()
    common.wait_for_quiet()
    max_figures = asyncio.run(
        flat_out(part.target, part.flat, args.concurrency, args.max_seconds, part.acked)
    )
    common.check_alive([api])
    return {
        "rate": rate_figures,
        "max": max_figures,
        "cpu_line": common.cpu_line(cpu, max(1, rate_figures["answered"])),
        "acked": dict(part.acked),
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
    parser.add_argument(
        "--incoming",
        action="store_true",
        help="also the incoming-message callbacks, on the same API process in the same run",
    )
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
            runs.append(one_run(args, url, prefix, number))
        print(f"  run {number}: {runs[-1]['cpu_line']}")
        if args.incoming:
            print(f"  run {number}, incoming: {runs[-1]['incoming']['cpu_line']}")
    offered = f"{args.rate:,.0f}/s offered, then {args.concurrency} callers flat out"
    top, p99 = print_part(f"callbacks: {offered}", runs)
    top_figure = f"{top:,.0f} (>= {TARGET_PER_SECOND:,})"
    p99_figure = f"{p99:.1f} ms at {args.rate:,.0f}/s offered (<= {TARGET_P99_MS:.0f})"
    targets = [
        Target("callbacks/s", top >= TARGET_PER_SECOND, top_figure),
        Target("p99 answer", p99 <= TARGET_P99_MS, p99_figure),
    ]
    if args.incoming:
        incoming = [run["incoming"] for run in runs]
        top, p99 = print_part(f"incoming-message callbacks: {offered}", incoming)
        per_run = [r["incoming"]["max"]["per_second"] / r["max"]["per_second"] for r in runs]
        print(
            f"\n  incoming / status, flat out, same run: {median(per_run):.2f} "
            f"(runs {', '.join(f'{r:.2f}' for r in per_run)})"
        )
        top_figure = f"{top:,.0f} (>= {TARGET_PER_SECOND:,})"
        p99_figure = f"{p99:.1f} ms at {args.rate:,.0f}/s offered (<= {TARGET_P99_MS:.0f})"
        targets += [
            Target("incoming callbacks/s", top >= TARGET_PER_SECOND, top_figure),
            Target("incoming p99 answer", p99 <= TARGET_P99_MS, p99_figure),
        ]
    print_targets(targets)
    common.dump_json(args.json, runs)
    return 0


def print_part(title: str, runs: list[dict[str, Any]]) -> tuple[float, float]:
    """One kind's table, a row per run and the medians; returns (max /s, p99 ms) medians."""
    rows = []
    for n, run in enumerate(runs, start=1):
        rate, top, acked, landed_ = run["rate"], run["max"], run["acked"], run["landed"]
        # every callback answered 200 must be in the database
        kept = all(landed_[kind] >= acked.get(kind, 0) for kind in landed_)
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
    print_table(title, columns, rows)
    return top, p99


if __name__ == "__main__":
    raise SystemExit(main())
