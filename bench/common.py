"""Shared pieces of the benchmarks: services, processes, memory, figures.

Every benchmark runs the code of the tree it lives in (that checkout, laid out as the
installed package by scripts/staged_tree.py, goes first on `sys.path` and on the children's
PYTHONPATH), makes a PostgreSQL database and a Redis key prefix of its own and removes both
at the end, runs the sandbox as a separate process (so it does not share the benchmark's
GIL) and the workers as real `stickerq worker` processes.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def _import_root() -> Path:
    """Where this checkout's `stickerq` package (with its producer, worker, migrations) is."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from staged_tree import stage

    sys.path.pop(0)
    folder = Path(tempfile.mkdtemp(prefix="stickerq-bench-tree-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # symlinks only
    return stage(ROOT, folder)


IMPORT_ROOT = _import_root()
if str(IMPORT_ROOT) not in sys.path:
    sys.path.insert(0, str(IMPORT_ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402  (pip install psutil: the venv of the benchmarks has it)
import psycopg  # noqa: E402
import redis  # noqa: E402

PY = sys.executable
REDIS_URL = os.environ.get("STICKERQ_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN_URL = os.environ.get("STICKERQ_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
API_KEY = "bench-sandbox-key-5d1c"
SID = "HXAP16XXXXXX97IN"
SENDER = "+919000000001"
SENDER_2 = "+919000000002"
STICKER_ID = "798123456789012"
RUN_ID = uuid.uuid4().hex[:8]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: this tree first on PYTHONPATH, no stray STICKERQ_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STICKERQ_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(IMPORT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env["PYTHONWARNINGS"] = "ignore:::celery.platforms"  # celery warns when run as root
    # `python -m stickerq` puts the working directory first on sys.path: run from another
    # checkout, its stickerq/ would win over this tree's while stickerq.worker still came
    # from the installed one (a mix of two commits).
    env["PYTHONSAFEPATH"] = "1"
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- services


@contextlib.contextmanager
def bench_database(tag: str) -> Iterator[str]:
    """A PostgreSQL database of this run's own, migrated to head; dropped at the end."""
    from stickerq.migrate import upgrade

    name = f"stickerq_bench_{tag}_{RUN_ID}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise SystemExit(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc}); start it or set "
            "STICKERQ_BENCH_PG_URL"
        ) from None
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        # A connection of its own: another job may have restarted PostgreSQL meanwhile,
        # which ends every connection opened before (the database would stay behind).
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=30) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def redis_prefix(tag: str) -> Iterator[str]:
    """A Redis key prefix of this run's own; every key under it is deleted at the end."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise SystemExit(f"Redis is not reachable at {REDIS_URL} ({exc})") from None
    prefix = f"stickerq-bench:{tag}:{RUN_ID}:"
    try:
        yield prefix
    finally:
        forget_redis_keys(prefix)
        client.close()


def forget_redis_keys(prefix: str) -> int:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*", count=5000))
    for start in range(0, len(keys), 5000):
        client.delete(*keys[start : start + 5000])
    client.close()
    return len(keys)


# The worker settings the benchmarks vary; each defaults to what a user gets.
WORKER_SETTINGS = ("in_flight", "batches_per_process", "batch_size")


def worker_default(name: str) -> Any:
    """A worker setting's default: what a user gets without configuring it."""
    from stickerq.settings import Settings

    return Settings.model_fields[name].default


def add_worker_arguments(parser: argparse.ArgumentParser, *, procs: int, concurrency: int) -> None:
    """--procs, --concurrency, --pool, and one option per WORKER_SETTINGS name."""
    parser.add_argument("--procs", type=int, default=procs, help="`stickerq worker` processes")
    parser.add_argument(
        "--concurrency", type=int, default=concurrency, help="--concurrency of each"
    )
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"])
    for name in WORKER_SETTINGS:
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            default=worker_default(name),
            help=f"STICKERQ_{name.upper()}",
        )


def worker_settings(args: argparse.Namespace) -> dict[str, int]:
    return {name: getattr(args, name) for name in WORKER_SETTINGS}


def make_settings(database_url: str, prefix: str, base_url: str, **overrides: Any) -> Any:
    from stickerq.settings import Settings

    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "redis_prefix": prefix,
        "kaleyra_sid": SID,
        "kaleyra_base_url": base_url,
        "kaleyra_api_key": API_KEY,
        "sender": SENDER,
        "rate_per_second": 100_000.0,
        "quick_attempts": 3,
        "quick_backoff_seconds": 0.05,
        "retry_delays_seconds": [1.0, 2.0],
        "connect_retry_seconds": 1.0,
        "dispatch_interval_seconds": 1.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# --------------------------------------------------------------------------- processes


# The sandbox stands in for Kaleyra's servers, which do not share our 2 cores: it runs ahead
# of everything else for a core, so that the arrival times it logs measure what the workers
# send rather than how long the sandbox waited to be scheduled (at normal priority, a starved
# sandbox stamps a backlog of requests at once: 247 "in one second" for 209 sent).
SANDBOX_NICE = int(os.environ.get("STICKERQ_BENCH_SANDBOX_NICE", "-10"))


def raise_priority(pid: int) -> str:
    """Give the sandbox process SANDBOX_NICE; returns a line saying what it got."""
    if SANDBOX_NICE == 0:
        return "sandbox at normal priority (STICKERQ_BENCH_SANDBOX_NICE=0)"
    try:
        os.setpriority(os.PRIO_PROCESS, pid, SANDBOX_NICE)
    except PermissionError:
        return (
            f"sandbox at normal priority (nice {SANDBOX_NICE} needs root): its arrival times "
            "include its own waits for a core"
        )
    return f"sandbox at nice {SANDBOX_NICE} (it stands in for a remote API)"


class Sandbox:
    """`stickerq sandbox` in a process of its own, driven through its control endpoints."""

    def __init__(
        self,
        latency_ms: float,
        senders: Sequence[str] = (SENDER, SENDER_2),
        callback_url: str | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [PY, "-m", "stickerq", "sandbox", "--port", str(self.port)]
        argv += ["--latency-ms", str(latency_ms), "--sid", SID]
        if callback_url:  # status callbacks (sent, delivered, read) of each accepted send
            argv += ["--callback-url", callback_url]
        for sender in senders:
            argv += ["--sender", sender]
        self.log_file = Path(tempfile.gettempdir()) / f"stickerq-bench-sandbox-{RUN_ID}.log"
        with self.log_file.open("wb") as out:
            self.process = subprocess.Popen(
                argv,
                env=child_env({"STICKERQ_SANDBOX_API_KEY": API_KEY}),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.priority_note = raise_priority(self.process.pid)
        self.client = httpx.Client(base_url=self.url, trust_env=False, timeout=120.0)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not start; see {self.log_file}")
            time.sleep(0.1)

    def messages_url(self, sender: str = SENDER) -> str:
        return f"{self.url}/v2/{SID}/whatsapp/{sender}/messages"

    def reset(self) -> None:
        self.client.post("/_sandbox/reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        return self.client.get("/_sandbox/stats").json()

    def accepted(self) -> list[dict[str, Any]]:
        return self.client.get("/_sandbox/accepted").json()

    def requests(self) -> list[dict[str, Any]]:
        return self.client.get("/_sandbox/requests").json()

    def rss_bytes(self) -> int:
        return vm_hwm(self.process.pid)

    def stop(self) -> None:
        self.client.close()
        stop_processes([self.process])


def stop_processes(processes: Iterable[subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
    """SIGTERM the processes we started, then SIGKILL whatever is still there."""
    processes = [p for p in processes if p.poll() is None]
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for child in _children(process.pid):
                with contextlib.suppress(psutil.Error):
                    child.kill()
            process.kill()
            process.wait()


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def spawn(argv: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen[bytes]:
    log_file = Path(tempfile.gettempdir()) / f"stickerq-bench-{RUN_ID}-{log_name}.log"
    with log_file.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    process.log_file = log_file  # type: ignore[attr-defined]
    return process


def spawn_stickerq_workers(
    settings: Any, processes: int, concurrency: int, pool: str = "prefork", tag: str = "worker"
) -> list[subprocess.Popen[bytes]]:
    """`processes` x `stickerq worker --concurrency N`, each a real Celery worker."""
    env = child_env(settings.as_environment())
    argv = [PY, "-m", "stickerq", "worker", "--quiet", "--loglevel", "WARNING"]
    argv += ["--concurrency", str(concurrency), "--pool", pool]
    return [spawn(argv, env, f"{tag}-{n}") for n in range(processes)]


def wait_for_celery(
    app: Any, workers: int, timeout: float = 60.0, alive: Iterable[subprocess.Popen[bytes]] = ()
) -> None:
    """Until `workers` Celery workers answer a ping (their consumers are up)."""
    deadline = time.monotonic() + timeout
    while True:
        answers = app.control.ping(timeout=0.5) or []
        if len(answers) >= workers:
            return
        check_alive(alive)
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(answers)} of {workers} workers answered in {timeout}s")
        time.sleep(0.2)


def check_alive(processes: Iterable[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is not None:
            log_file = getattr(process, "log_file", "?")
            raise RuntimeError(f"a process exited with {process.returncode}; see {log_file}")


@contextlib.contextmanager
def profiled(
    pids: Sequence[int], out: Path | None, fmt: str = "flamegraph", on_cpu: bool = False
) -> Iterator[None]:
    """py-spy record of these processes and their children while the block runs (if `out`).

    `on_cpu`: only samples of threads holding the GIL (py-spy --gil), so threads waiting on a
    socket or a queue do not count: close to where the CPU goes."""
    if out is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = Path(PY).with_name("py-spy")
    recorders = [
        subprocess.Popen(
            [
                str(spy),
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--rate",
                "200",
                *(["--gil"] if on_cpu else []),
                "--format",
                fmt,
                "--output",
                profile_path(out, pid, fmt),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]
    time.sleep(0.5)  # py-spy attaches
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            try:
                recorder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                recorder.kill()
        log(f"profiles written to {out}-<pid>.{PROFILE_SUFFIX.get(fmt, 'txt')}")


PROFILE_SUFFIX = {"flamegraph": "svg", "speedscope": "json", "raw": "txt", "chrometrace": "json"}


def profile_path(out: Path, pid: int, fmt: str) -> str:
    return f"{out}-{pid}.{PROFILE_SUFFIX.get(fmt, 'txt')}"


# --------------------------------------------------------------------------- memory


def vm_hwm(pid: int) -> int:
    """Peak resident set size (VmHWM) of one process, in bytes; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


@dataclass
class TreeRss:
    """VmHWM of a set of processes and all their children."""

    per_process: dict[int, int] = field(default_factory=dict)

    @property
    def max_bytes(self) -> int:
        return max(self.per_process.values(), default=0)

    @property
    def sum_bytes(self) -> int:
        return sum(self.per_process.values())


def tree_rss(pids: Iterable[int]) -> TreeRss:
    result = TreeRss()
    for pid in pids:
        result.per_process[pid] = vm_hwm(pid)
        for child in _children(pid):
            result.per_process[child.pid] = vm_hwm(child.pid)
    return result


def mb(n_bytes: float) -> float:
    return n_bytes / 1024 / 1024


# --------------------------------------------------------------------------- CPU


def _cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
        return float(times.user + times.system)
    except psutil.Error:
        return 0.0


class CpuMeter:
    """CPU seconds spent by each role (a set of process trees) and by the whole machine.

    On a shared, noisy machine this tells what a run's throughput was bound by: how much
    CPU each part used per message, and how much went to processes that are not ours.
    PostgreSQL and Redis are counted by process name (other users of them count too);
    with `database`, `postgres_db` counts only the backends connected to that database (their
    process title names it), which other jobs on the same server do not touch. `bench` is this
    process alone (it enqueues and publishes).
    """

    def __init__(self, roles: dict[str, Sequence[int]], database: str | None = None) -> None:
        self.roles = {name: list(pids) for name, pids in roles.items()}
        self.backends = None if database is None else DatabaseBackends(database)
        self.start = self._snapshot()

    def _processes(self) -> dict[str, list[psutil.Process]]:
        found: dict[str, list[psutil.Process]] = {}
        for name, pids in self.roles.items():
            found[name] = []
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    root = psutil.Process(pid)
                    found[name] += [root, *root.children(recursive=True)]
        found["bench"] = [psutil.Process()]
        found["postgres"], found["redis"] = [], []
        for process in psutil.process_iter(["name"]):
            name = process.info["name"] or ""
            if name.startswith("postgres"):
                found["postgres"].append(process)
            elif name.startswith("redis-server"):
                found["redis"].append(process)
        return found

    def _snapshot(self) -> dict[str, Any]:
        per_role: dict[str, dict[int, float]] = {}
        for name, processes in self._processes().items():
            per_role[name] = {p.pid: _cpu_seconds(p) for p in processes}
        total = psutil.cpu_times()
        busy = total.user + total.nice + total.system + total.irq + total.softirq
        return {"roles": per_role, "busy": busy, "wall": time.monotonic()}

    def stop(self, extra: dict[str, float] | None = None) -> dict[str, float]:
        """CPU seconds per role over the measured span, plus `others`, `busy` and `wall`.

        `extra`: CPU seconds of processes that ended meanwhile (they told their own).
        """
        end = self._snapshot()
        for name, seconds in (extra or {}).items():
            end["roles"][name] = {-1: seconds}
        result: dict[str, float] = {}
        for name, now in end["roles"].items():
            before = self.start["roles"].get(name, {})
            # a process that started meanwhile counts from 0
            result[name] = sum(now[pid] - before.get(pid, 0.0) for pid in now)
        result["busy"] = end["busy"] - self.start["busy"]
        result["wall"] = end["wall"] - self.start["wall"]
        result["others"] = max(0.0, result["busy"] - sum(result[name] for name in end["roles"]))
        if self.backends is not None:  # a part of `postgres`, not a role of its own
            result["postgres_db"] = self.backends.stop()
        return result


class DatabaseBackends:
    """CPU seconds of the PostgreSQL backends connected to one database, polled every
    POLL_SECONDS in a thread of its own so that short-lived connections (the producer's)
    count too, up to their last poll."""

    POLL_SECONDS = 0.2

    def __init__(self, database: str) -> None:
        self.title = f" {database} "  # a backend's process title names its database
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.done = threading.Event()
        self._poll()
        self.first = dict(self.last)  # only what they spend from now on counts
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(self.POLL_SECONDS):
            self._poll()

    def _poll(self) -> None:
        for process in psutil.process_iter(["name", "cmdline"]):
            if (process.info["name"] or "").startswith("postgres") and self.title in " ".join(
                process.info["cmdline"] or ()
            ):
                self.last[process.pid] = _cpu_seconds(process) or self.last.get(process.pid, 0.0)

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        self._poll()
        return sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())


QUIET = {"enabled": True}


def wait_for_quiet(max_busy_cores: float = 0.5, timeout: float = 90.0) -> float:
    """Wait (at most `timeout`) until the machine is nearly idle before a timed part.

    This machine is shared: another job's test suite can take a core for a minute. Returns
    the cores busy in the last one-second sample.
    """
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + timeout
    busy = psutil.cpu_percent(interval=1.0) / 100 * cores
    if not QUIET["enabled"]:
        return busy
    announced = False
    while busy > max_busy_cores and time.monotonic() < deadline:
        if not announced:
            log(f"machine busy ({busy:.1f} cores in use by others): waiting up to {timeout:.0f}s")
            announced = True
        busy = psutil.cpu_percent(interval=1.0) / 100 * cores
    return busy


NOISY_CORES = 0.25


def cpu_line(cpu: dict[str, float], messages: int) -> str:
    """'worker 0.62 ms/msg, sandbox 0.31, ...; machine 87% busy, others 0.4 cores'."""
    parts = [
        f"{name} {cpu[name] * 1000 / messages:.2f}"
        for name in cpu
        if name not in ("busy", "wall", "others")
    ]
    cores = os.cpu_count() or 1
    others = cpu["others"] / cpu["wall"]
    return (
        f"CPU ms per message: {', '.join(parts)}; machine {cpu['busy'] / cpu['wall'] / cores:.0%}"
        f" busy, processes not ours {others:.2f} cores"
        + (" (NOISY: figures not comparable)" if others > NOISY_CORES else "")
    )


# --------------------------------------------------------------------------- figures


def max_in_any_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most events in any half-open window [t, t + window) of the given length."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if v is not None]
    return statistics.median(clean) if clean else float("nan")


def median_at(runs: Sequence[dict[str, Any]], *path: str) -> float:
    """The median over the runs of the figure at `path` in each run's dict (missing: left out)."""
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        values.append(value)
    return median(values)


def fmt(value: Any, spec: str = ",.0f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:  # nan
        return "-"
    if isinstance(value, str):
        return value
    return format(value, spec)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in columns], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print(
            "  "
            + "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            )
        )
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))
    sys.stdout.flush()


@dataclass
class Target:
    name: str
    met: bool
    figure: str

    def line(self) -> str:
        return f"  {'MET   ' if self.met else 'MISSED'}  {self.name}: {self.figure}"


def print_targets(targets: Sequence[Target]) -> None:
    print("\ntargets (medians of the runs)")
    for target in targets:
        print(target.line())
    sys.stdout.flush()


def machine_line() -> str:
    load = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} cores, {mb(psutil.virtual_memory().total) / 1024:.0f} GiB, "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; python {sys.version.split()[0]}; "
        f"tree {ROOT}"
    )


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    interval: float = 0.1,
    alive: Iterable[subprocess.Popen[bytes]] = (),
    what: str = "condition",
) -> Any:
    deadline = time.monotonic() + timeout
    alive = list(alive)
    while True:
        value = predicate()
        if value:
            return value
        check_alive(alive)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not reached in {timeout:.0f}s (last: {value!r})")
        time.sleep(interval)


def dump_json(path: Path | None, data: Any) -> None:
    if path is not None:
        path.write_text(json.dumps(data, indent=2, default=str))
