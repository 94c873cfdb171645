"""The sandbox on its own event loop in a daemon thread, for tests and the demo.

Its helpers go through the control endpoints over HTTP, so the state is only ever touched
by the server's loop and no lock is needed.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

import httpx
from aiohttp import web

from stickerq.errors import StickerqError
from stickerq.sandbox.app import BACKLOG, build_app
from stickerq.sandbox.config import SandboxConfig, changed_config

SHUTDOWN_SECONDS = 0.5  # on stop(), answers still stalled (TIMEOUT) are cancelled after this
START_SECONDS = 10.0


class SandboxControlError(StickerqError):
    """A control endpoint refused a request (unknown outcome name, bad config value)."""


class SandboxServer:
    """A running sandbox at `url`: `with SandboxServer(SandboxConfig(...)) as sandbox: ...`."""

    def __init__(
        self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.host = host
        self.port = port  # the bound port once started, when 0 was asked for
        self.url = ""  # e.g. "http://127.0.0.1:43211" once started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None

    def start(self) -> SandboxServer:
        """Bind and serve in a daemon thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise SandboxControlError("this sandbox is already started; make a new SandboxServer")
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(
            build_app(self.config), access_log=None, shutdown_timeout=SHUTDOWN_SECONDS
        )
        ready = threading.Event()
        failures: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._open(runner))
            except BaseException as exc:  # handed to start() in the caller's thread
                failures.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(runner.cleanup())
                loop.close()

        thread = threading.Thread(target=serve, name="stickerq-sandbox", daemon=True)
        thread.start()
        if not ready.wait(START_SECONDS):
            raise SandboxControlError(f"the sandbox did not start within {START_SECONDS}s")
        if failures:
            thread.join()
            raise SandboxControlError(
                f"the sandbox could not listen on {self.host}:{self.port}: {failures[0]}"
            ) from failures[0]
        self._loop, self._thread = loop, thread
        self._client = httpx.Client(base_url=self.url, trust_env=False, timeout=10.0)
        return self

    async def _open(self, runner: web.AppRunner) -> None:
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=BACKLOG)
        await site.start()
        self.port = runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop serving (stalled answers are cancelled) and wait for the thread to end."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=SHUTDOWN_SECONDS + 5.0)
        self._loop = self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        if self._client is None:
            raise SandboxControlError("the sandbox is not running: call start() first")
        response = self._client.request(method, path, json=payload)
        if response.status_code >= 400:
            raise SandboxControlError(f"{method} {path}: {response.json().get('error')}")
        return response.json()

    def script(self, outcomes: dict[str, list[str]]) -> None:
        """Queue outcomes per recipient, e.g. `{"+919812345678": ["WA500", "WA202"]}`."""
        self._call("POST", "/_sandbox/script", outcomes)

    def stats(self) -> dict[str, Any]:
        """`{"requests", "accepted_total", "accepted": {recipient: n}, "by_code": {code: n}}`."""
        return self._call("GET", "/_sandbox/stats")

    def accepted(self) -> list[dict[str, Any]]:
        """Every accepted send: at, recipient, sender, message_id, ref, ref1, ref2, wa_source."""
        return self._call("GET", "/_sandbox/accepted")

    def requests(self) -> list[dict[str, Any]]:
        """Every send request, in order of arrival, with its answer."""
        return self._call("GET", "/_sandbox/requests")

    def callbacks(self) -> dict[str, int]:
        """Status callbacks `posted` (2xx), `refused` (4xx), `retried`, `gave_up`, `pending`."""
        return self._call("GET", "/_sandbox/callbacks")

    def reset(self) -> None:
        """Clear logs, counters and scripts."""
        self._call("POST", "/_sandbox/reset")

    def configure(self, **changes: Any) -> None:
        """Change config fields at run time, e.g. `configure(latency_ms=100, balance=None)`."""
        config = changed_config(self.config, changes)  # checked here first: clearer errors
        payload = dict(changes)
        if "senders" in payload:
            payload["senders"] = sorted(config.senders)
        self._call("POST", "/_sandbox/config", payload)
        self.config = config
