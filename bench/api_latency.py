"""API latency: `GET /campaigns/{id}` while a campaign sends at full speed, and idle.

    .venv/bin/python bench/api_latency.py [--runs 3] [--recipients 20000] [--request-rate 20]

The HTTP API runs as a real process (`stickerq api`, uvicorn), the sandbox as its own at
nice -10 (100 ms latency), the workers as real `stickerq worker` processes, PostgreSQL and
Redis with a database and key prefix of this run's own. Per run:

- unpolled: a campaign of --recipients that nobody polls (msgs/s for comparison);
- load:     the same campaign again while a client in a process of its own calls
            `GET /campaigns/{id}` at --request-rate (and `GET /metrics` at --metrics-rate),
            until the answer says the campaign completed (or --load-timeout);
- idle:     the same calls for --idle-seconds once the campaign is done (workers idle).

With --upload-rows N, then the same calls while a CSV of N rows is uploaded to
`POST /campaigns` (bench/api_upload.py, which also runs alone).

Prints a table per run, then the medians and MET/MISSED per target; exits non-zero only on a
crash.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import PY, STICKER_ID, Target, fmt, log, median, print_table, print_targets
from throughput import CampaignDb, recipients

TOKEN_ENV = "STICKERQ_BENCH_API_TOKEN"
P99_TARGET_MS = 100.0
SETTLED = ("completed", "cancelled")


# --------------------------------------------------------------------------- client


def client_child(base_url: str) -> None:
    """Runs in a child process: opens its connections, says `ready`, reads its orders (one
    JSON line on stdin), calls the API at a bounded rate and prints what it measured."""
    import httpx

    token = os.environ[TOKEN_ENV]

    async def run() -> dict[str, Any]:
        connections = int(os.environ.get("BENCH_CONNECTIONS", "2"))
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            base_url=base_url, headers=headers, limits=limits, trust_env=False, timeout=10.0
        ) as client:
            # every connection open and warm before the timed calls
            await asyncio.gather(*(client.get("/healthz") for _ in range(connections)))
            print("ready", flush=True)
            orders = json.loads(await asyncio.to_thread(sys.stdin.readline))
            return await calls(client, orders, connections)

    print(json.dumps(asyncio.run(run())), flush=True)


async def calls(client: Any, orders: dict[str, Any], connections: int) -> dict[str, Any]:
    """`orders`: campaign_id, rate, metrics_rate, seconds (the bound), until_settled, and
    stop_file (optional: the calls stop once that file exists)."""
    stop = asyncio.Event()
    started = time.perf_counter()
    cpu_started = time.process_time()
    samples: dict[str, list[tuple[float, float, int]]] = {"campaign": [], "metrics": []}
    skipped = {"campaign": 0, "metrics": 0}
    in_flight: set[asyncio.Task[None]] = set()

    async def one(kind: str, path: str) -> None:
        sent = time.perf_counter()
        response = await client.get(path)
        latency = time.perf_counter() - sent
        samples[kind].append((sent - started, latency, response.status_code))
        watch = kind == "campaign" and orders["until_settled"] and response.status_code == 200
        if watch and response.json().get("status") in SETTLED:
            stop.set()

    async def paced(kind: str, path: str, rate: float) -> None:
        """Calls at fixed times n / rate; a slot finding every connection busy is skipped
        (counted), so a slow API is not answered by a growing queue of calls."""
        n = 0
        stop_file = orders.get("stop_file")
        while not stop.is_set():
            due = started + n / rate
            n += 1
            if due - started > orders["seconds"] or (stop_file and os.path.exists(stop_file)):
                stop.set()
                break
            delay = due - time.perf_counter()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
            if len(in_flight) >= connections * 2:
                skipped[kind] += 1
                continue
            task = asyncio.create_task(one(kind, path))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)

    loops = [paced("campaign", f"/campaigns/{orders['campaign_id']}", orders["rate"])]
    if orders["metrics_rate"] > 0:
        loops.append(paced("metrics", "/metrics", orders["metrics_rate"]))
    await asyncio.gather(*loops)
    if in_flight:
        await asyncio.wait(in_flight)
    return {
        "samples": samples,
        "skipped": skipped,
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu_started,
    }


class Client:
    """The client child, started and warm before its phase so that its start-up is not timed."""

    def __init__(self, api: Api, connections: int) -> None:
        env = common.child_env({TOKEN_ENV: api.token, "BENCH_CONNECTIONS": str(connections)})
        self.process = subprocess.Popen(
            [PY, __file__, "--child-client", api.url],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        if line != "ready":
            raise RuntimeError(f"the client did not start (said {line!r})")

    def go(self, **orders: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(orders) + "\n").encode())
        self.process.stdin.flush()

    def result(self, timeout: float) -> dict[str, Any]:
        out, _ = self.process.communicate(timeout=timeout)
        if self.process.returncode != 0:
            raise RuntimeError(f"the client exited with {self.process.returncode}")
        return json.loads(out.decode().strip().splitlines()[-1])


# --------------------------------------------------------------------------- the API


class Api:
    """`stickerq api` (uvicorn) in a process of its own, with a bearer token of this run's."""

    def __init__(self, settings: Any) -> None:
        self.token = secrets.token_urlsafe(24)
        self.port = common.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = common.child_env({**settings.as_environment(), "STICKERQ_API_TOKENS": self.token})
        argv = [PY, "-m", "stickerq", "api", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = common.spawn(argv, env, "api")
        import httpx

        self.client = httpx.Client(
            base_url=self.url,
            trust_env=False,
            timeout=30.0,
            headers={"Authorization": f"Bearer {self.token}"},
        )

        def up() -> bool:
            try:
                return self.client.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        common.wait_until(up, 60, alive=[self.process], what="the API answering /healthz")

    def warm(self, campaign_id: int) -> None:
        """The routes' first calls (engine, pools, imports) before anything is timed."""
        for _ in range(5):
            self.client.get(f"/campaigns/{campaign_id}").raise_for_status()
            self.client.get("/metrics").raise_for_status()

    def stop(self) -> None:
        self.client.close()
        common.stop_processes([self.process])


# --------------------------------------------------------------------------- one run


def percentiles(latencies: list[float]) -> dict[str, float | int | None]:
    """p50/p95/p99 (nearest rank) and max, in ms."""
    ordered = sorted(latencies)
    if not ordered:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000

    return {
        "n": len(ordered),
        "p50": rank(0.50),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": ordered[-1] * 1000,
    }


def summarise_phase(result: dict[str, Any]) -> dict[str, Any]:
    phase: dict[str, Any] = {"seconds": result["seconds"], "client_cpu": result["cpu"]}
    for kind, samples in result["samples"].items():
        ok = [latency for _, latency, status in samples if status == 200]
        phase[kind] = {
            **percentiles(ok),
            "errors": len(samples) - len(ok),
            "skipped": result["skipped"][kind],
        }
    return phase


def run_once(
    run: int,
    args: Any,
    settings: Any,
    api: Api,
    sandbox: common.Sandbox,
    workers: list[Any],
    campaigns: CampaignDb,
) -> dict[str, Any]:
    from stickerq.producer.api import enqueue_campaign
    from stickerq.producer.request import CampaignRequest

    figures: dict[str, Any] = {}
    roles = {
        "worker": [w.pid for w in workers],
        "sandbox": [sandbox.process.pid],
        "api": [api.process.pid],
    }

    def enqueue(offset: int, name: str) -> tuple[int, float]:
        numbers = recipients(args.recipients, offset)
        started = time.time()
        request = CampaignRequest(sticker_id=STICKER_ID, to=",".join(numbers), name=name)
        return enqueue_campaign(settings, request).campaign_id, started

    def settle(campaign_id: int) -> float:
        return common.wait_until(
            lambda: campaigns.finished_at(campaign_id),
            max(300.0, args.recipients / 50),
            interval=0.1,
            alive=[*workers, api.process],
            what=f"campaign {campaign_id} completed",
        )

    offset = run * 1_000_000

    def unpolled() -> None:
        log(f"run {run}: a campaign nobody polls")
        sandbox.reset()
        common.wait_for_quiet()
        campaign_id, started = enqueue(offset, f"unpolled-{run}")
        figures["unpolled_rate"] = args.recipients / (settle(campaign_id) - started)

    def polled() -> int:
        log(f"run {run}: a campaign polled at {args.request_rate:g}/s")
        sandbox.reset()
        client = Client(api, args.connections)
        common.wait_for_quiet()
        meter = common.CpuMeter(roles)
        campaign_id, started = enqueue(offset + 500_000, f"polled-{run}")
        client.go(
            campaign_id=campaign_id,
            rate=args.request_rate,
            metrics_rate=args.metrics_rate,
            seconds=args.load_timeout,
            until_settled=True,
        )
        finished = settle(campaign_id)
        load = client.result(timeout=args.load_timeout + 60)
        figures["load_cpu"] = meter.stop({"client": load["cpu"]})
        figures["polled_rate"] = args.recipients / (finished - started)
        figures["load"] = summarise_phase(load)
        figures["counts"] = campaigns.counts(campaign_id)
        figures["accepted"] = sandbox.stats()["accepted_total"]
        return campaign_id

    # The unpolled campaign goes first in odd runs, second in even ones: neither always
    # meets the workers fresher. The idle phase comes last, when nothing sends.
    if args.skip_unpolled:
        campaign_id = polled()
    elif run % 2:
        unpolled()
        campaign_id = polled()
    else:
        campaign_id = polled()
        unpolled()

    log(f"run {run}: the same calls for {args.idle_seconds:g}s, workers idle")
    client = Client(api, args.connections)
    common.wait_for_quiet()
    meter = common.CpuMeter(roles)
    client.go(
        campaign_id=campaign_id,
        rate=args.request_rate,
        metrics_rate=args.metrics_rate,
        seconds=args.idle_seconds,
        until_settled=False,
    )
    idle = client.result(timeout=args.idle_seconds + 60)
    figures["idle_cpu"] = meter.stop({"client": idle["cpu"]})
    figures["idle"] = summarise_phase(idle)
    return figures


# --------------------------------------------------------------------------- output


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def latency_rows(f: dict[str, Any], kinds: list[str]) -> list[list[str]]:
    rows = []
    for kind, label in (("campaign", "GET /campaigns/{id}"), ("metrics", "GET /metrics")):
        if kind not in kinds:
            continue
        for phase in ("load", "idle"):
            p = f[phase][kind]
            rows.append(
                [
                    f"{label}, {'under load' if phase == 'load' else 'idle'}",
                    fmt(p["n"]),
                    *(fmt(p[q], ".1f") for q in ("p50", "p95", "p99", "max")),
                    fmt(p["errors"]),
                    fmt(p["skipped"]),
                ]
            )
        rows.append(
            [
                f"{label}, under load / idle",
                "",
                *(
                    fmt(ratio(f["load"][kind][q], f["idle"][kind][q]), ".2f")
                    for q in ("p50", "p95", "p99", "max")
                ),
                "",
                "",
            ]
        )
    return rows


COLUMNS = ["calls", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "skipped"]


def kinds_of(args: Any) -> list[str]:
    return ["campaign", "metrics"] if args.metrics_rate > 0 else ["campaign"]


def print_run(run: int, f: dict[str, Any], args: Any) -> None:
    print_table(f"run {run}", COLUMNS, latency_rows(f, kinds_of(args)))
    counts = ", ".join(f"{k} {v:,}" for k, v in sorted(f["counts"].items()))
    print(
        f"  msgs/s polled {fmt(f['polled_rate'])}, unpolled {fmt(f.get('unpolled_rate'))} "
        f"(polled / unpolled {fmt(ratio(f['polled_rate'], f.get('unpolled_rate')), '.2f')}); "
        f"load phase {f['load']['seconds']:.1f}s, messages: {counts}, "
        f"sandbox accepted {f['accepted']:,}"
    )
    messages = f["accepted"] or 1
    print(f"  under load: {common.cpu_line(f['load_cpu'], messages)}")
    print(f"  idle: {idle_cpu_line(f['idle_cpu'])}")


def idle_cpu_line(cpu: dict[str, float]) -> str:
    cores = os.cpu_count() or 1
    others = cpu["others"] / cpu["wall"]
    parts = ", ".join(
        f"{name} {cpu[name] / cpu['wall']:.2f}" for name in ("api", "client", "worker", "postgres")
    )
    return (
        f"cores used: {parts}; machine {cpu['busy'] / cpu['wall'] / cores:.0%} busy, processes "
        f"not ours {others:.2f} cores"
        + (" (NOISY: figures not comparable)" if others > common.NOISY_CORES else "")
    )


def summarise(runs: list[dict[str, Any]], args: Any) -> None:
    def med(*path: str) -> float:
        return common.median_at(runs, *path)

    rows: list[list[str]] = []
    for kind, label in (("campaign", "GET /campaigns/{id}"), ("metrics", "GET /metrics")):
        if kind not in kinds_of(args):
            continue
        for phase, name in (("load", "under load"), ("idle", "idle")):
            rows.append(
                [
                    f"{label}, {name}",
                    fmt(med(phase, kind, "n")),
                    *(fmt(med(phase, kind, q), ".1f") for q in ("p50", "p95", "p99", "max")),
                    fmt(sum(f[phase][kind]["errors"] for f in runs)),
                    fmt(sum(f[phase][kind]["skipped"] for f in runs)),
                ]
            )
        per_run = {
            q: median([ratio(f["load"][kind][q], f["idle"][kind][q]) for f in runs])
            for q in ("p50", "p95", "p99", "max")
        }
        rows.append(
            [f"{label}, under load / idle", "", *(fmt(v, ".2f") for v in per_run.values()), "", ""]
        )
    print_table(f"medians of {len(runs)} run(s) (ratios: median of per-run ratios)", COLUMNS, rows)
    polled = med("polled_rate")
    unpolled = med("unpolled_rate")
    others = median([f["load_cpu"]["others"] / f["load_cpu"]["wall"] for f in runs])
    print(
        f"  msgs/s polled {fmt(polled)}, unpolled {fmt(unpolled)}, polled / unpolled "
        f"{fmt(median([ratio(f['polled_rate'], f.get('unpolled_rate')) for f in runs]), '.2f')}"
        f" (median of per-run ratios); processes not ours under load {others:.2f} cores"
        + (" (NOISY: figures not comparable)" if others > common.NOISY_CORES else "")
    )
    p99 = med("load", "campaign", "p99")
    print_targets(
        [
            Target(
                f"GET /campaigns/{{id}} p99 under load ≤ {P99_TARGET_MS:g} ms",
                p99 <= P99_TARGET_MS,
                f"{p99:.1f} ms (idle {med('idle', 'campaign', 'p99'):.1f} ms)",
            )
        ]
    )


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    common.add_worker_arguments(parser, procs=1, concurrency=2)
    parser.add_argument("--rate", type=float, default=100_000.0, help="limit per sender (/s)")
    parser.add_argument(
        "--request-rate", type=float, default=20.0, help="GET /campaigns/{id} per second"
    )
    parser.add_argument(
        "--metrics-rate", type=float, default=1.0, help="GET /metrics per second (0: none)"
    )
    parser.add_argument("--connections", type=int, default=2, help="the client's connections")
    parser.add_argument(
        "--load-timeout", type=float, default=120.0, help="the polled phase stops by then (s)"
    )
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="the idle phase (s)")
    parser.add_argument("--skip-unpolled", action="store_true", help="no campaign without polling")
    parser.add_argument(
        "--no-wait-quiet",
        action="store_true",
        help="do not wait for a nearly idle machine before each timed part",
    )
    parser.add_argument(
        "--upload-rows",
        type=int,
        default=0,
        help="also the calls while a CSV of this many rows is uploaded (bench/api_upload.py)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--child-client", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.child_client:
        client_child(args.child_client)
        return 0
    from stickerq.queue import app, configure_celery

    common.QUIET["enabled"] = not args.no_wait_quiet
    print(common.machine_line())
    print(
        f"api latency: {args.recipients:,} recipients, sandbox latency {args.latency_ms:g} ms, "
        f"{args.runs} run(s); GET /campaigns/{{id}} at {args.request_rate:g}/s, /metrics at "
        f"{args.metrics_rate:g}/s, {args.connections} connection(s); stickerq: {args.procs} "
        f"worker(s) x {args.pool} {args.concurrency}, in_flight {args.in_flight}, "
        f"limit {args.rate:,.0f}/s; API: one `stickerq api` process"
    )
    runs: list[dict[str, Any]] = []
    with common.bench_database("api") as db_url, common.redis_prefix("api") as prefix:
        sandbox = common.Sandbox(args.latency_ms)
        print(f"  {sandbox.priority_note}", flush=True)
        settings = common.make_settings(
            db_url, prefix, sandbox.url, **common.worker_settings(args), rate_per_second=args.rate
        )
        configure_celery(settings)
        workers = common.spawn_stickerq_workers(settings, args.procs, args.concurrency, args.pool)
        campaigns = CampaignDb(db_url)
        api: Api | None = None
        try:
            api = Api(settings)
            common.wait_for_celery(app, args.procs, alive=workers)
            warm_id = warm_up(settings, args, campaigns, workers)
            api.warm(warm_id)
            for run in range(1, args.runs + 1):
                figures = run_once(run, args, settings, api, sandbox, workers, campaigns)
                runs.append(figures)
                print_run(run, figures, args)
        finally:
            campaigns.close()
            if api is not None:
                api.stop()
            common.stop_processes(workers)
            sandbox.stop()
    summarise(runs, args)
    common.dump_json(args.json, runs)
    if args.upload_rows:
        import api_upload

        args.rows = args.upload_rows
        uploads = api_upload.measure(args)
        api_upload.summarise(uploads)
    return 0


def warm_up(settings: Any, args: Any, campaigns: CampaignDb, workers: list[Any]) -> int:
    """A small campaign: the workers' send runtime and every pool are built before timing."""
    from stickerq.producer.api import enqueue_campaign
    from stickerq.producer.request import CampaignRequest

    count = args.batch_size * args.procs * args.concurrency * 2
    request = CampaignRequest(
        sticker_id=STICKER_ID, to=",".join(recipients(count, 30_000_000)), name="warm"
    )
    campaign_id = enqueue_campaign(settings, request).campaign_id
    common.wait_until(
        lambda: campaigns.finished_at(campaign_id),
        120,
        interval=0.1,
        alive=workers,
        what="the warm-up campaign completed",
    )
    return campaign_id


if __name__ == "__main__":
    sys.exit(main())
