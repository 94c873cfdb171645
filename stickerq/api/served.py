"""The API served by uvicorn on a loopback port in a daemon thread: for the demo (the sandbox
calls it back) and the tests that need a real server."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from stickerq.errors import ServiceUnavailable

START_SECONDS = 10.0


class ServedApi:
    """`with ServedApi(app) as api: api.url`: serving until the block ends."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1") -> None:
        with socket.socket() as probe:
            probe.bind((host, 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="stickerq-api", daemon=True)

    def start(self) -> ServedApi:
        self._thread.start()
        deadline = time.monotonic() + START_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ServiceUnavailable(f"the HTTP API did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Finish the requests in hand (their callbacks are written), then stop."""
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def __enter__(self) -> ServedApi:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
