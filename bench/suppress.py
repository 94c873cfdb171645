"""Enqueue with a big suppression list against an empty one, in the same run.

    .venv/bin/python bench/suppress.py [--runs 3] [--recipients 100000] [--suppressed N]

A CSV of --recipients distinct numbers is enqueued (`producer.api.enqueue_campaign`, in a
fresh producer process, as bench/enqueue.py measures it) on a database of this run's own,
alternately with an empty suppression list and with --suppressed numbers (default: as many
as recipients) on the campaign's account, 1% of them recipients (every 100th row) and the
rest numbers the CSV does not hold. The two are interleaved (empty first in odd runs, full
first in even ones) so that the shared machine's drift falls on both. Before the first run
the list is loaded once through `producer.suppressions.import_file` (what `stickerq
suppress import` does) and timed; between measurements it is moved in or out of the table by
SQL, which is not timed. Target: the full list costs at most 1.2 x the empty one.
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
import enqueue
from common import Target, fmt, log, median, print_table

OVERLAP_EVERY = 100  # every 100th recipient is on the list


def write_list(path: Path, recipients: int, suppressed: int) -> int:
    """The suppression list's CSV; returns how many of its numbers are recipients."""
    overlap = min(suppressed, recipients // OVERLAP_EVERY)
    with path.open("w", encoding="utf-8") as out:
        out.write("phone\n")
        for start in range(0, suppressed, 100_000):
            stop = min(suppressed, start + 100_000)
            out.write(
                "".join(
                    f"+9198{10_000_000 + n * OVERLAP_EVERY:08d}\n"
                    if n < overlap
                    else f"+9197{10_000_000 + n:08d}\n"
                    for n in range(start, stop)
                )
            )
    return overlap


def load_list(settings: Any, path: Path) -> float:
    """`stickerq suppress import` of the list, timed; then parked aside by SQL."""
    from stickerq.producer.suppressions import import_file

    started = time.perf_counter()
    result = import_file(settings, path, "bench", actor="tester")
    seconds = time.perf_counter() - started
    log(f"imported {result.added:,} numbers in {seconds:.1f} s")
    return seconds


def use_list(db_url: str, full: bool) -> None:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as db:
        db.execute("TRUNCATE suppressions")
        if full:
            db.execute("INSERT INTO suppressions SELECT * FROM bench_parked_suppressions")
        db.execute("VACUUM ANALYZE suppressions")
        db.execute("CHECKPOINT")  # the moved rows' writes do not fall on the measurement


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--suppressed", type=int, default=None, help="default: --recipients")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--no-wait-quiet", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args()
    common.QUIET["enabled"] = not args.no_wait_quiet
    suppressed = args.recipients if args.suppressed is None else args.suppressed
    print(common.machine_line())
    print(
        f"enqueue of {args.recipients:,} recipients with 0 and with {suppressed:,} suppressed "
        f"numbers on the account; {args.runs} run(s)"
    )
    folder = Path(tempfile.mkdtemp(prefix=f"stickerq-bench-suppress-{common.RUN_ID}-"))
    runs: list[dict[str, dict[str, Any]]] = []
    try:
        recipients_csv, list_csv = folder / "recipients.csv", folder / "suppressed.csv"
        enqueue.write_csv(recipients_csv, args.recipients, refs=False)
        overlap = write_list(list_csv, args.recipients, suppressed)
        with (
            common.bench_database("suppress") as db_url,
            common.redis_prefix("suppress") as prefix,
        ):
            settings = common.make_settings(
                db_url, prefix, "http://127.0.0.1:9", batch_size=args.batch_size
            )
            import_seconds = load_list(settings, list_csv)
            import psycopg

            with psycopg.connect(db_url, autocommit=True) as db:
                db.execute("CREATE TABLE bench_parked_suppressions AS SELECT * FROM suppressions")
            for run in range(1, args.runs + 1):
                order = ("empty", "full") if run % 2 else ("full", "empty")
                figures: dict[str, dict[str, Any]] = {}
                for case in order:
                    use_list(db_url, case == "full")
                    log(f"run {run}: {case} list")
                    figures[case] = enqueue.measure(recipients_csv, settings, db_url, None)
                assert figures["full"]["suppressed"] == overlap, figures["full"]
                assert figures["empty"]["suppressed"] == 0
                runs.append(figures)
                print_run(f"run {run}", figures, suppressed)
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    summarise(runs, suppressed, import_seconds)
    common.dump_json(args.json, {"import_seconds": import_seconds, "runs": runs})
    return 0


COLUMNS = ["list", "recipients stored", "suppressed", "seconds", "validate+store s", "dispatch s"]


def row(case: str, f: dict[str, Any], suppressed: int) -> list[str]:
    return [
        f"{suppressed:,} numbers" if case == "full" else "empty",
        fmt(f["recipients"]),
        fmt(f["suppressed"]),
        fmt(f["seconds"], ".2f"),
        fmt(f["store_seconds"], ".2f"),
        fmt(f["dispatch_seconds"], ".2f"),
    ]


def print_run(title: str, figures: dict[str, dict[str, Any]], suppressed: int) -> None:
    print_table(title, COLUMNS, [row(case, figures[case], suppressed) for case in sorted(figures)])


def summarise(runs: list[dict[str, dict[str, Any]]], suppressed: int, import_s: float) -> None:
    keys = ("recipients", "suppressed", "seconds", "store_seconds", "dispatch_seconds")
    medians = {
        case: {key: median([r[case][key] for r in runs]) for key in keys}
        for case in ("empty", "full")
    }
    print_table(
        f"medians of {len(runs)} run(s)",
        COLUMNS,
        [row(case, medians[case], suppressed) for case in ("empty", "full")],
    )
    ratio = medians["full"]["seconds"] / medians["empty"]["seconds"]
    ratios = [r["full"]["seconds"] / r["empty"]["seconds"] for r in runs]
    common.print_targets(
        [
            Target(
                f"enqueue with {suppressed:,} suppressed ≤ 1.2 x with none",
                ratio <= 1.2,
                f"{ratio:.2f} x (per run: {', '.join(f'{x:.2f}' for x in ratios)})",
            )
        ]
    )
    print(f"import of the {suppressed:,}-number list (stickerq suppress import): {import_s:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
