"""Headers on the API's answers: JSON is never stored by a cache, nothing is sniffed.

A JSON answer holds campaign data, phone numbers and refs, asked for with a bearer token:
`Cache-Control: no-store` keeps it out of browser and proxy caches (a route that sets its
own Cache-Control keeps it). `X-Content-Type-Options: nosniff`, on every answer, stops a
browser from reading an answer as another type than it says (JSON run as a script).

Pure ASGI: it edits the start message and passes the body through as it comes, so a
streamed answer (the CSV export) still streams; Starlette's BaseHTTPMiddleware would hold
it whole.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def is_json(content_type: str) -> bool:
    """application/json, application/problem+json, any other `+json`."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


class AnswerHeaders:
    """The ASGI middleware: add it last in create_app, so it wraps every other one too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                if is_json(headers.get("content-type", "")):
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
