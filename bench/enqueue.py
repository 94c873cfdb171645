"""Enqueue at scale: a CSV of 1,000,000 recipients validated, stored and dispatched.

    .venv/bin/python bench/enqueue.py [--runs 3] [--recipients 1000000] [--flat-sizes 100000]

Each measurement runs `producer.api.enqueue_campaign(settings, CampaignRequest(to_file=CSV))`
in a fresh producer process (what `stickerq send --to-file` does, without the CLI's start-up), on an
empty PostgreSQL database of this run's own, with no worker running: the dispatched batches
wait in Redis under this run's prefix and are deleted afterwards. Figures: seconds in all and
split into validate + store (one streamed transaction) and dispatch (publishing the batches);
the producer's peak RSS (VmHWM, read by the producer itself at the end) and its growth over
the RSS it had before the call. The same at --flat-sizes shows whether memory grows with N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import PY, STICKER_ID, Target, fmt, log, mb, median, print_table


def write_csv(path: Path, count: int, refs: bool) -> None:
    """Distinct valid Indian mobiles; with `refs`, per-row ref, ref1 and ref2 columns."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone,ref,ref1,ref2\n" if refs else "phone\n")
        for start in range(0, count, 100_000):
            stop = min(count, start + 100_000)
            if refs:
                lines = (
                    f"+9198{10_000_000 + n:08d},customer-{n},segment-{n % 97},wave-{n % 5}\n"
                    for n in range(start, stop)
                )
            else:
                lines = (f"+9198{10_000_000 + n:08d}\n" for n in range(start, stop))
            out.write("".join(lines))


def producer_child(csv_path: str, settings_json: str) -> None:
    """Runs in a fresh process: one enqueue_campaign, timed, and this process's peak RSS."""
    import stickerq.producer.api as api
    from stickerq.producer.request import CampaignRequest
    from stickerq.settings import Settings

    settings = Settings(_env_file=None, **json.loads(settings_json))  # type: ignore[call-arg]
    phases: dict[str, float] = {}

    def timed(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                phases[name] = time.perf_counter() - started

        return wrapper

    api.store_campaign = timed("store", api.store_campaign)
    api.dispatch_campaign = timed("dispatch", api.dispatch_campaign)
    baseline = _rss()
    started = time.perf_counter()
    result = api.enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to_file=Path(csv_path))
    )
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "store_seconds": phases.get("store"),
                "dispatch_seconds": phases.get("dispatch"),
                "recipients": result.recipients,
                "suppressed": result.suppressed,
                "batches": result.batches,
                "rss_before": baseline,
                "peak_rss": common.vm_hwm(_pid()),
                # the largest peak of the processes that normalised phone numbers (0: none)
                "helper_peak_rss": _largest_child_peak(),
            }
        )
    )


def _pid() -> int:
    import os

    return os.getpid()


def _largest_child_peak() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(
    csv_path: Path, settings: Any, db_url: str, profile: Path | None, profile_format: str = ""
) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as db:
        db.execute(
            "TRUNCATE attempts, messages, campaigns, campaign_counts RESTART IDENTITY CASCADE"
        )
        db.execute("VACUUM ANALYZE messages")
    payload = settings.model_dump(mode="json")
    payload["kaleyra_api_key"] = settings.kaleyra_api_key.get_secret_value()
    argv = [PY, __file__, "--child", str(csv_path), json.dumps(payload)]
    common.wait_for_quiet()
    if profile is not None:
        spy = Path(PY).with_name("py-spy")
        argv = [str(spy), "record", "--rate", "100", "--format", profile_format]
        argv += ["--output", str(profile), "--", PY, __file__, "--child", str(csv_path)]
        argv += [json.dumps(payload)]
    started = time.time()
    out = subprocess.run(argv, env=common.child_env(), capture_output=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"the producer failed:\n{out.stderr.decode()[-3000:]}")
    result = json.loads(
        next(line for line in out.stdout.decode().splitlines()[::-1] if line.startswith("{"))
    )
    result["wall_seconds"] = time.time() - started
    common.forget_redis_keys(settings.redis_prefix)  # the dispatched batches: no worker runs
    return result


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument(
        "--flat-sizes",
        default="100000",
        help="comma-separated smaller sizes measured once per run, to compare memory",
    )
    parser.add_argument("--refs", action="store_true", help="per-row ref, ref1, ref2 columns")
    parser.add_argument("--batch-size", type=int, default=200, help="STICKERQ_BATCH_SIZE")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy record the producer")
    parser.add_argument(
        "--profile-format", default="flamegraph", choices=["flamegraph", "speedscope", "raw"]
    )
    parser.add_argument(
        "--no-wait-quiet",
        action="store_true",
        help="do not wait for a nearly idle machine before each timed part",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.child:
        producer_child(*args.child)
        return 0
    common.QUIET["enabled"] = not args.no_wait_quiet
    sizes = sorted({int(s) for s in args.flat_sizes.split(",") if s.strip()} - {args.recipients})
    print(common.machine_line())
    print(
        f"enqueue: {args.recipients:,} recipients from a CSV "
        f"({'phone,ref,ref1,ref2' if args.refs else 'phone'}), also {sizes or 'no other size'}"
        f" for memory; batch {args.batch_size}; {args.runs} run(s)"
    )
    runs: list[dict[int, dict[str, Any]]] = []
    folder = Path(tempfile.gettempdir()) / f"stickerq-bench-enqueue-{common.RUN_ID}"
    folder.mkdir()
    try:
        files = {}
        for size in [*sizes, args.recipients]:
            files[size] = folder / f"recipients-{size}.csv"
            write_csv(files[size], size, args.refs)
        with (
            common.bench_database("enqueue") as db_url,
            common.redis_prefix("enqueue") as prefix,
        ):
            settings = common.make_settings(
                db_url, prefix, "http://127.0.0.1:9", batch_size=args.batch_size
            )
            for run in range(1, args.runs + 1):
                figures: dict[int, dict[str, Any]] = {}
                for size in [*sizes, args.recipients]:
                    log(f"run {run}: {size:,} recipients")
                    profile = None
                    if args.profile and size == args.recipients:
                        args.profile.mkdir(parents=True, exist_ok=True)
                        suffix = common.PROFILE_SUFFIX[args.profile_format]
                        profile = args.profile / f"enqueue-run{run}.{suffix}"
                    figures[size] = measure(
                        files[size], settings, db_url, profile, args.profile_format
                    )
                runs.append(figures)
                print_run(run, figures)
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    summarise(runs, args.recipients, sizes)
    common.dump_json(args.json, runs)
    return 0


COLUMNS = [
    "recipients",
    "seconds",
    "validate+store s",
    "dispatch s",
    "rows/s",
    "batches",
    "peak RSS MB",
    "RSS growth MB",
    "helper peak MB",
]


def row(size: int, f: dict[str, Any]) -> list[str]:
    return [
        fmt(size),
        fmt(f["seconds"], ".1f"),
        fmt(f["store_seconds"], ".1f"),
        fmt(f["dispatch_seconds"], ".1f"),
        fmt(size / f["seconds"]),
        fmt(f["batches"]),
        f"{mb(f['peak_rss']):.0f}",
        f"{mb(f['peak_rss'] - f['rss_before']):.0f}",
        f"{mb(f.get('helper_peak_rss', 0)):.0f}",
    ]


def print_run(run: int, figures: dict[int, dict[str, Any]]) -> None:
    print_table(f"run {run}", COLUMNS, [row(size, f) for size, f in figures.items()])


def summarise(runs: list[dict[int, dict[str, Any]]], recipients: int, sizes: list[int]) -> None:
    keys = (
        "seconds",
        "store_seconds",
        "dispatch_seconds",
        "batches",
        "peak_rss",
        "rss_before",
        "helper_peak_rss",
    )
    medians = {
        size: {key: median([r[size][key] for r in runs]) for key in keys}
        for size in [*sizes, recipients]
    }
    print_table(
        f"medians of {len(runs)} run(s)",
        COLUMNS,
        [row(size, f) for size, f in medians.items()],
    )
    big = medians[recipients]
    cores = len(os.sched_getaffinity(0))  # helpers at most: one per usable core
    whole = big["peak_rss"] + cores * big["helper_peak_rss"]
    targets = [
        Target(
            f"enqueue {recipients:,} recipients in ≤ 60 s",
            big["seconds"] <= 60,
            f"{big['seconds']:.1f} s",
        ),
        Target(
            "producer peak RSS ≤ 300 MB, its helpers' peaks added",
            whole <= 300 * 1024 * 1024,
            f"{mb(whole):.0f} MB ({mb(big['peak_rss']):.0f} + {cores} x "
            f"{mb(big['helper_peak_rss']):.0f})",
        ),
    ]
    if sizes:
        small = medians[sizes[0]]
        growth = mb(big["peak_rss"] - small["peak_rss"])
        per_100k = growth / ((recipients - sizes[0]) / 100_000)
        targets.append(
            Target(
                "memory flat in N (peak RSS grows < 5 MB per 100,000 recipients)",
                per_100k < 5,
                f"{mb(small['peak_rss']):.0f} MB at {sizes[0]:,} → {mb(big['peak_rss']):.0f} MB "
                f"at {recipients:,}: +{growth:.0f} MB ({per_100k:.1f} MB per 100,000)",
            )
        )
    common.print_targets(targets)


if __name__ == "__main__":
    sys.exit(main())
