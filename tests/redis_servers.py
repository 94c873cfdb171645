"""Redis processes of a test's own, on free ports: one server it can really restart, or the
production topology (a master, a replica and three Sentinels) it can fail over."""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import redis

from tests.conftest import wait_until

MASTER_NAME = "stickerq"
DOWN_AFTER_MS = 1000  # how long a silent master is taken for alive


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: apt-get install redis-server")
    return binary


class RedisServer:
    """A redis-server (no persistence), or a Sentinel given its configuration file."""

    def __init__(self, workdir: Path, *options: str, config: str | None = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.options, self.config = options, config
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.config is not None:  # a Sentinel rewrites its file: one of its own
            path = self.workdir / "sentinel.conf"
            path.write_text(f"port {self.port}\nbind 127.0.0.1\n{self.config}", encoding="utf-8")
            argv = [_binary(), str(path), "--sentinel"]
        else:
            argv = [
                _binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), *self.options,
            ]  # fmt: skip
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.answers, timeout=10)

    def stop(self) -> None:
        """SIGKILL: a crash, nothing saved."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=1.0, socket_connect_timeout=1.0)

    def answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False


class SentinelTopology:
    """A master, a replica and three Sentinels (quorum 2) watching the master as MASTER_NAME."""

    def __init__(self, workdir: Path) -> None:
        # a replica's full sync starts at once, not after Redis's default wait of 5 s for others
        at_once = ("--repl-diskless-sync-delay", "0")
        self.master = RedisServer(workdir / "a", *at_once)
        self.replica = RedisServer(
            workdir / "b", *at_once, "--replicaof", "127.0.0.1", str(self.master.port)
        )
        self.servers = {self.master.port: self.master, self.replica.port: self.replica}
        watch = (
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
            f"sentinel known-replica {MASTER_NAME} 127.0.0.1 {self.replica.port}\n"
        )
        self.sentinels = [RedisServer(workdir / f"s{n}", config=watch) for n in range(3)]
        # Each starts knowing the others, as a Sentinel's own rewritten file would say, instead
        # of finding them by their hellos (several seconds)
        ids = {sentinel.port: secrets.token_hex(20) for sentinel in self.sentinels}
        for sentinel in self.sentinels:
            sentinel.config = f"{watch}sentinel myid {ids[sentinel.port]}\n" + "".join(
                f"sentinel known-sentinel {MASTER_NAME} 127.0.0.1 {port} {other}\n"
                for port, other in ids.items()
                if port != sentinel.port
            )
        hosts = ";".join(f"sentinel://127.0.0.1:{s.port}" for s in self.sentinels)
        self.url = f"{hosts}/0"

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        wait_until(self._replica_in_sync, timeout=20, interval=0.1)
        for sentinel in self.sentinels:
            sentinel.start()
        wait_until(self._sentinels_ready, timeout=30, interval=0.2)

    def stop(self) -> None:
        for server in [*self.sentinels, *self.servers.values()]:
            server.stop()

    def master_port(self) -> int:
        """The master's port, as the first Sentinel that answers says."""
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    _, port = client.sentinel_get_master_addr_by_name(MASTER_NAME)
                    return int(port)
            except redis.ConnectionError:
                continue
        raise AssertionError("no Sentinel answers")

    def failover(self) -> int:
        """SENTINEL FAILOVER: the replica becomes the master, the master its replica. Returns
        the new master's port, once it takes writes."""
        old = self.master_port()
        with self.sentinels[0].client() as client:
            client.sentinel_failover(MASTER_NAME)
        return self._new_master(old)

    def kill_master(self) -> int:
        """SIGKILL the master; the Sentinels promote the replica after DOWN_AFTER_MS."""
        old = self.master_port()
        self.servers[old].stop()
        return self._new_master(old)

    def _new_master(self, old: int, timeout: float = 30.0) -> int:
        def promoted() -> int | None:
            port = self.master_port()
            if port == old:
                return None
            with self.servers[port].client() as client:
                return port if client.info("replication")["role"] == "master" else None

        return int(wait_until(promoted, timeout=timeout, interval=0.1))  # type: ignore[arg-type]

    def _replica_in_sync(self) -> bool:
        with self.replica.client() as client:
            return client.info("replication").get("master_link_status") == "up"

    def _sentinels_ready(self) -> bool:
        """Each Sentinel knows the replica and the two others: a failover can be agreed."""
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                master = client.sentinel_master(MASTER_NAME)
                if int(master["num-slaves"]) < 1 or int(master["num-other-sentinels"]) < 2:
                    return False
        return True


if __name__ == "__main__":  # `python -m tests.redis_servers`: a topology for bench/throughput.py
    import sys
    import tempfile
    import time

    # SIGTERM too (a background job ignores Ctrl-C's SIGINT): the servers stop with it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with tempfile.TemporaryDirectory(prefix="stickerq-sentinel-") as folder:
        topology = SentinelTopology(Path(folder))
        topology.start()
        print(f"--redis-url '{topology.url}' --sentinel-master {MASTER_NAME}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            topology.stop()
