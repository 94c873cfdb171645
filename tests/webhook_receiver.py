"""A real webhook receiver on loopback for the tests: it records every POST (headers, body)
and can fail the first N with a 500, or hold a POST unanswered for a while."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, fail_first: int = 0, hold_first_seconds: float = 0.0) -> None:
        self.fail_first = fail_first
        self.hold_first_seconds = hold_first_seconds
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.posts.append((dict(self.headers.items()), body))
                    number = len(receiver.posts)
                if number == 1 and receiver.hold_first_seconds:
                    time.sleep(receiver.hold_first_seconds)
                status = 500 if number <= receiver.fail_first else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no" if status == 500 else b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict[str, Any]]:
        """Every event received (a batch's each), copies included, in arrival order."""
        found: list[dict[str, Any]] = []
        with self.lock:
            posts = list(self.posts)
        for _, body in posts:
            document = json.loads(body)
            found += document if isinstance(document, list) else [document]
        return found

    def events_posted(self) -> list[Any]:
        """Each POST's document: an event (a dict) or an array of them (a list)."""
        with self.lock:
            return [json.loads(body) for _, body in self.posts]

    def accepted_events(self) -> list[dict[str, Any]]:
        """The events of the POSTs answered 200."""
        found: list[dict[str, Any]] = []
        with self.lock:
            posts = list(self.posts)[self.fail_first :]
        for _, body in posts:
            document = json.loads(body)
            found += document if isinstance(document, list) else [document]
        return found
