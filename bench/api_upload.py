"""One heavy request never slows the others: `GET /campaigns/{id}` while a CSV of a million
rows is uploaded to `POST /campaigns` and enqueued, against the same calls on an idle API.

    .venv/bin/python bench/api_upload.py [--runs 3] [--rows 1000000] [--request-rate 20]

(also run by `bench/api_latency.py --upload-rows N`). The HTTP API runs as a real process
(`stickerq api`, uvicorn), the polling client as another (bench/api_latency.py's), the upload
from this one, streamed from a file; PostgreSQL and Redis with a database and key prefix of
this run's own. No worker runs: the upload's batches wait in Redis, so what is measured is
the API alone. Per run: the idle calls for --idle-seconds, then the same calls while the
upload is sent, parsed, stored and dispatched (until its 201). Prints each run, the medians,
and MET/MISSED for p99 under the upload ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from api_latency import P99_TARGET_MS, Api, Client, summarise_phase
from common import STICKER_ID, Target, fmt, log, median, print_table, print_targets
from throughput import recipients

COLUMNS = ["calls", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "skipped"]


def write_csv(path: Path, rows: int, offset: int) -> int:
    with path.open("w", encoding="utf-8") as out:
        out.write("phone,ref\n")
        for n, phone in enumerate(recipients(rows, offset)):
            out.write(f"{phone},row{n}\n")
    return path.stat().st_size


def upload(api: Api, path: Path, name: str) -> tuple[float, int]:
    """POST the file as multipart (httpx streams it from disk); seconds and the campaign."""
    with path.open("rb") as file:
        started = time.perf_counter()
        answer = api.client.post(
            "/campaigns",
            data={"sticker_id": STICKER_ID, "name": name},
            files={"recipients": ("recipients.csv", file, "text/csv")},
            timeout=900.0,
        )
    seconds = time.perf_counter() - started
    answer.raise_for_status()
    return seconds, int(answer.json()["campaign_id"])


def calls_while(api: Api, args: Any, campaign_id: int, seconds: float, stop: Path) -> Client:
    client = Client(api, args.connections)
    client.go(
        campaign_id=campaign_id,
        rate=args.request_rate,
        metrics_rate=0,
        seconds=seconds,
        until_settled=False,
        stop_file=str(stop),
    )
    return client


def run_once(run: int, args: Any, api: Api, folder: Path, polled_id: int) -> dict[str, Any]:
    path = folder / f"upload-{run}.csv"
    size = write_csv(path, args.rows, run * 10_000_000)
    roles = {"api": [api.process.pid]}
    figures: dict[str, Any] = {"bytes": size}

    log(f"run {run}: the calls for {args.idle_seconds:g}s on an idle API")
    common.wait_for_quiet()
    client = calls_while(api, args, polled_id, args.idle_seconds, folder / "never")
    figures["idle"] = summarise_phase(client.result(timeout=args.idle_seconds + 60))

    log(f"run {run}: the calls while {args.rows:,} rows ({size / 1e6:.0f} MB) are uploaded")
    stop = folder / f"uploaded-{run}"
    common.wait_for_quiet()
    meter = common.CpuMeter(roles)
    client = calls_while(api, args, polled_id, 3_600, stop)
    figures["upload_seconds"], figures["campaign_id"] = upload(api, path, f"upload-{run}")
    stop.touch()
    load = client.result(timeout=120)
    figures["load_cpu"] = meter.stop({"client": load["cpu"]})
    figures["load"] = summarise_phase(load)
    figures["api_rss_mb"] = common.mb(common.vm_hwm(api.process.pid))
    path.unlink()
    return figures


def rows_of(f: dict[str, Any]) -> list[list[str]]:
    rows = []
    for phase, name in (("load", "while uploading"), ("idle", "idle")):
        p = f[phase]["campaign"]
        rows.append(
            [
                f"GET /campaigns/{{id}}, {name}",
                fmt(p["n"]),
                *(fmt(p[q], ".1f") for q in ("p50", "p95", "p99", "max")),
                fmt(p["errors"]),
                fmt(p["skipped"]),
            ]
        )
    return rows


def print_run(run: int, f: dict[str, Any]) -> None:
    print_table(f"run {run}", COLUMNS, rows_of(f))
    print(
        f"  upload of {f['bytes'] / 1e6:.0f} MB answered 201 in {f['upload_seconds']:.1f}s; "
        f"API peak RSS {f['api_rss_mb']:.0f} MB; "
        f"API CPU {f['load_cpu']['api'] / f['load_cpu']['wall']:.2f} cores"
    )


def summarise(runs: list[dict[str, Any]]) -> None:
    def med(*path: str) -> float:
        return common.median_at(runs, *path)

    rows = []
    for phase, name in (("load", "while uploading"), ("idle", "idle")):
        rows.append(
            [
                f"GET /campaigns/{{id}}, {name}",
                fmt(med(phase, "campaign", "n")),
                *(fmt(med(phase, "campaign", q), ".1f") for q in ("p50", "p95", "p99", "max")),
                fmt(sum(f[phase]["campaign"]["errors"] for f in runs)),
                fmt(sum(f[phase]["campaign"]["skipped"] for f in runs)),
            ]
        )
    print_table(f"medians of {len(runs)} run(s)", COLUMNS, rows)
    ratio = median([f["load"]["campaign"]["p99"] / f["idle"]["campaign"]["p99"] for f in runs])
    print(
        f"  p99 while uploading / idle {ratio:.2f} (median of per-run ratios); upload "
        f"{med('upload_seconds'):.1f}s; API peak RSS {med('api_rss_mb'):.0f} MB"
    )
    p99 = med("load", "campaign", "p99")
    print_targets(
        [
            Target(
                f"GET /campaigns/{{id}} p99 while a CSV is uploaded ≤ {P99_TARGET_MS:g} ms",
                p99 <= P99_TARGET_MS,
                f"{p99:.1f} ms (idle {med('idle', 'campaign', 'p99'):.1f} ms)",
            )
        ]
    )


def measure(args: Any) -> list[dict[str, Any]]:
    from stickerq.producer.api import enqueue_campaign
    from stickerq.producer.request import CampaignRequest

    runs: list[dict[str, Any]] = []
    with (
        common.bench_database("upload") as db_url,
        common.redis_prefix("upload") as prefix,
        tempfile.TemporaryDirectory(prefix="stickerq-bench-upload-") as folder,
    ):
        settings = common.make_settings(db_url, prefix, "http://127.0.0.1:9")
        request = CampaignRequest(sticker_id=STICKER_ID, to=",".join(recipients(20, 0)))
        polled_id = enqueue_campaign(settings, request).campaign_id
        api = Api(settings)
        try:
            api.warm(polled_id)
            for run in range(1, args.runs + 1):
                figures = run_once(run, args, api, Path(folder), polled_id)
                runs.append(figures)
                print_run(run, figures)
        finally:
            api.stop()
    return runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--request-rate", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=2, help="the client's connections")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="the idle phase (s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the uploaded CSV")
    parser.add_argument("--no-wait-quiet", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    add_arguments(parser)
    args = parser.parse_args()
    common.QUIET["enabled"] = not args.no_wait_quiet
    print(common.machine_line())
    print(
        f"api upload: a CSV of {args.rows:,} rows to POST /campaigns, {args.runs} run(s); "
        f"GET /campaigns/{{id}} at {args.request_rate:g}/s on {args.connections} connection(s)"
    )
    runs = measure(args)
    summarise(runs)
    common.dump_json(args.json, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
