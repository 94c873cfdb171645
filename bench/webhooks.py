"""What `message.status` webhooks cost a campaign, and how well they are delivered.

    .venv/bin/python bench/webhooks.py [--runs 1] [--recipients 20000] [--latency-ms 100]

One `stickerq worker --beat`, one `stickerq api` (the callbacks receiver) and the sandbox
(each accepted send called back sent, delivered, read, to the API) on a database of this
run's own; a webhook receiver on loopback in this process. After a warm-up campaign of the
same size, per run two campaigns of --recipients each, in alternating order: one with no
webhook, one with a `message.status` webhook to the receiver (added before it, removed
after; the subscriber lists are given their 5 s to see it). Figures:

- msgs/s: recipients / (the campaign's finished_at - just before enqueue_campaign);
  the ratio with / without, per run (target >= 0.95);
- events: the outbox rows written for the webhook, the distinct event ids received, the
  copies received (target: every event once, no copy), waiting until every row is delivered;
- lag: received - the event's created_at, p50 / p99 (target p99 <= 5 s).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import Target, fmt, median, print_table, print_targets
from throughput import CampaignDb

SECRET = "bench-webhooks-callback-secret-2b7f"
TARGET_RATIO = 0.95
TARGET_LAG_P99 = 5.0


class Receiver:
    """Records (event id, created_at, received at) of every event POSTed, copies included."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[str, float, float]] = []
        self.posts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                now = time.time()
                document = json.loads(body)
                events = document if isinstance(document, list) else [document]
                rows = [
                    (e["id"], datetime.fromisoformat(e["created_at"]).timestamp(), now)
                    for e in events
                ]
                with receiver.lock:
                    receiver.seen += rows
                    receiver.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def take(self) -> tuple[list[tuple[str, float, float]], int]:
        with self.lock:
            seen, posts = self.seen, self.posts
            self.seen, self.posts = [], 0
        return seen, posts


class Db(CampaignDb):
    """throughput.py's reads of a campaign, and the outbox's."""

    def outbox(self, endpoint_id: int) -> tuple[int, int]:
        """(rows written for the endpoint, rows still waiting)."""
        row = self.db.execute(
            "SELECT count(*), count(*) FILTER (WHERE delivered_at IS NULL AND failed_at IS NULL)"
            " FROM webhook_outbox WHERE endpoint_id = %s",
            (endpoint_id,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def callbacks_settled(self, campaign_id: int) -> bool:
        """Every sent message of the campaign got its `read` callback (or failed)."""
        row = self.db.execute(
            "SELECT count(*) FROM messages WHERE campaign_id = %s AND status IN ('sent', "
            "'delivered')",
            (campaign_id,),
        ).fetchone()
        return int(row[0]) == 0


def numbers(count: int, offset: int) -> str:
    return ",".join(f"+9198{offset + n:08d}" for n in range(count))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument(
        "--warm-recipients", type=int, default=None, help="the warm-up (default: --recipients)"
    )
    parser.add_argument("--no-wait-quiet", action="store_true")
    parser.add_argument("--json", type=Path)
    common.add_worker_arguments(parser, procs=1, concurrency=2)
    args = parser.parse_args()
    common.QUIET["enabled"] = not args.no_wait_quiet
    print(common.machine_line())
    from stickerq.producer.api import enqueue_campaign
    from stickerq.producer.request import CampaignRequest
    from stickerq.producer.webhooks import add_webhook, remove_webhook
    from stickerq.queue import app, configure_celery
    from stickerq.webhook_outbox import SUBSCRIBERS_TTL_SECONDS

    runs: list[dict[str, Any]] = []
    processes = []
    with common.bench_database("webhooks") as db_url, common.redis_prefix("webhooks") as prefix:
        api_port = common.free_port()
        callback_url = f"http://127.0.0.1:{api_port}/callbacks/kaleyra/{SECRET}"
        sandbox = common.Sandbox(args.latency_ms, callback_url=callback_url)
        settings = common.make_settings(
            db_url,
            prefix,
            sandbox.url,
            **common.worker_settings(args),
            callback_secret=SECRET,
            webhook_allow_hosts="127.0.0.1",
        )
        configure_celery(settings)
        env = common.child_env(settings.as_environment())
        try:
            api_argv = [common.PY, "-m", "stickerq", "api", "--port", str(api_port)]
            processes.append(common.spawn(api_argv, env, "api"))
            worker_argv = [common.PY, "-m", "stickerq", "worker", "--quiet", "--beat"]
            worker_argv += ["--loglevel", "WARNING", "--concurrency", str(args.concurrency)]
            processes.append(common.spawn(worker_argv, env, "worker"))
            common.wait_for_celery(app, 1, alive=processes)
            receiver = Receiver()
            db = Db(db_url)
            roles = {
                "api": [processes[0].pid],
                "worker": [processes[1].pid],
                "sandbox": [sandbox.process.pid],
            }
            offset = 0

            def campaign(name: str, count: int) -> tuple[int, float]:
                nonlocal offset
                request = CampaignRequest(sticker_id=common.STICKER_ID, to=numbers(count, offset))
                offset += count
                meter = common.CpuMeter(roles)
                started = time.time()
                campaign_id = enqueue_campaign(settings, request).campaign_id
                finished = common.wait_until(
                    lambda: db.finished_at(campaign_id), 600, 0.05, processes, f"{name} done"
                )
                common.log(common.cpu_line(meter.stop(), count))
                return campaign_id, count / (finished - started)

            # A whole campaign first: after a small one the first measured campaign was the
            # slower of the two in every run, whichever it was (docs/performance.md).
            campaign("warm", args.warm_recipients or args.recipients)
            for run in range(args.runs):
                result: dict[str, Any] = {}
                for hooked in (False, True) if run % 2 == 0 else (True, False):
                    endpoint_id = None
                    if hooked:
                        added = add_webhook(settings, receiver.url, ["message.status"], "bench")
                        endpoint_id = added.webhook["id"]
                        time.sleep(SUBSCRIBERS_TTL_SECONDS + 1)
                    common.wait_for_quiet()
                    name = "with" if hooked else "without"
                    common.log(f"run {run + 1}: campaign {name} a message.status webhook")
                    campaign_id, rate = campaign(name, args.recipients)
                    result[f"rate_{name}"] = rate
                    common.wait_until(
                        lambda cid=campaign_id: db.callbacks_settled(cid), 1200, 2.0, processes
                    )
                    if endpoint_id is not None:
                        common.wait_until(
                            lambda e=endpoint_id: db.outbox(e)[1] == 0, 600, 1.0, processes
                        )
                        written, _ = db.outbox(endpoint_id)
                        seen, posts = receiver.take()
                        lags = [received - created for _, created, received in seen]
                        distinct = len({event_id for event_id, _, _ in seen})
                        result |= {
                            "events_written": written,
                            "events_distinct": distinct,
                            "copies": len(seen) - distinct,
                            "posts": posts,
                            "lag_p50": quantile(lags, 0.5),
                            "lag_p99": quantile(lags, 0.99),
                        }
                        remove_webhook(settings, endpoint_id, "bench")
                        time.sleep(SUBSCRIBERS_TTL_SECONDS + 1)
                result["ratio"] = result["rate_with"] / result["rate_without"]
                runs.append(result)
                print_table(
                    f"run {run + 1}",
                    ["figure", "value"],
                    [[key, fmt(value, ",.3f")] for key, value in result.items()],
                )
        finally:
            common.stop_processes(processes)
            sandbox.stop()
    ratio = median([r["ratio"] for r in runs])
    p99 = median([r["lag_p99"] for r in runs])
    once = all(r["events_distinct"] == r["events_written"] and r["copies"] == 0 for r in runs)
    print_targets(
        [
            Target(
                f"msgs/s with / without >= {TARGET_RATIO}", ratio >= TARGET_RATIO, f"{ratio:.3f}"
            ),
            Target(
                "every event delivered once (by id)",
                once,
                json.dumps(
                    [(r["events_written"], r["events_distinct"], r["copies"]) for r in runs]
                ),
            ),
            Target(
                f"delivery lag p99 <= {TARGET_LAG_P99:g} s", p99 <= TARGET_LAG_P99, f"{p99:.2f} s"
            ),
        ]
    )
    common.dump_json(args.json, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
