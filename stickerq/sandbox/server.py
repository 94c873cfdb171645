"""The sandbox on its own event loop in a daemon thread, for tests and the demo.

Its helpers go through the control endpoints over HTTP, so the state is only ever touched
by the server's loop and no lock is needed. `inbound` and `announce_inbound` play customers
writing to a business number (sandbox/inbound.py): they open 24-hour windows and post
incoming-message callbacks to `inbound_url`, and return once every post is answered.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import httpx
from aiohttp import web

from stickerq.errors import StickerqError
from stickerq.sandbox.app import BACKLOG, build_app
from stickerq.sandbox.callbacks import ATTEMPTS
from stickerq.sandbox.config import SandboxConfig, changed_config

SHUTDOWN_SECONDS = 0.5  # on stop(), answers still stalled (TIMEOUT) are cancelled after this
START_SECONDS = 10.0
# Posting incoming callbacks waits for every answer: thousands of them, each tried up to 6
# times with a 30 s timeout (sandbox/callbacks.py) when the receiver is slow or down.
INBOUND_WAIT_SECONDS = 600.0


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

    def _call(
        self, method: str, path: str, payload: Any = None, timeout: float | None = None
    ) -> Any:
        if self._client is None:
            raise SandboxControlError("the sandbox is not running: call start() first")
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        response = self._client.request(method, path, json=payload, **extra)
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
        """Clear logs, counters, scripts and opened windows."""
        self._call("POST", "/_sandbox/reset")

    def windows(self) -> dict[str, Any]:
        """`outside_window` (accepted sends called back 131047), `opened` (pairs opened by a
        customer message) and `inbound`: incoming callbacks posted, refused, retried..."""
        return self._call("GET", "/_sandbox/windows")

    def inbound(self, sender: str, customers: Iterable[str], kind: str = "text") -> int:
        """Each customer writes to `sender` now (a message of type `kind`): opens their windows
        and, when `inbound_url` is set, posts the incoming callbacks. Returns how many opened."""
        messages = [{"from": c, "wanumber": sender, "type": kind} for c in customers]
        answer = self._call("POST", "/_inbound", messages, timeout=INBOUND_WAIT_SECONDS)
        _check_posts("/_inbound", answer)
        return answer["opened"]

    def announce_inbound(self, sender: str, recipients: Iterable[str]) -> int:
        """Post an incoming callback, dated up to an hour ago, for each recipient in the window
        by `in_window_share`, and open its window; returns how many were posted."""
        payload = {"sender": sender, "recipients": list(recipients)}
        answer = self._call("POST", "/_sandbox/announce", payload, timeout=INBOUND_WAIT_SECONDS)
        _check_posts("/_sandbox/announce", answer)
        return answer["posted"]

    def configure(self, **changes: Any) -> None:
        """Change config fields at run time, e.g. `configure(latency_ms=100, balance=None)`."""
        config = changed_config(self.config, changes)  # checked here first: clearer errors
        payload = dict(changes)
        if "senders" in payload:
            payload["senders"] = sorted(config.senders)
        self._call("POST", "/_sandbox/config", payload)
        self.config = config


def _check_posts(path: str, answer: dict[str, int]) -> None:
    """Raise when some incoming callbacks were not taken: refused (4xx) or given up."""
    if answer["refused"] or answer["gave_up"]:
        raise SandboxControlError(
            f"POST {path}: of {answer['opened']} incoming callbacks, {answer['refused']} were "
            f"refused (4xx) and {answer['gave_up']} given up (5xx or no answer, {ATTEMPTS} tries): "
            "check inbound_url and the API's log"
        )
