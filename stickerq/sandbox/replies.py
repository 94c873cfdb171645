"""Every answer the sandbox can give, in Kaleyra's words (see docs/kaleyra-contract.md).

A scripted outcome names one of `REPLIES` (an answer with a JSON body) or one of
`TRANSPORT_FAULTS` (no JSON answer at all: an HTML page, a dropped connection, a stall).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

try:  # orjson is faster where installed; the output is the same JSON either way
    import orjson

    def dumps(value: Any) -> bytes:
        """Serialise to JSON bytes."""
        return orjson.dumps(value)

except ImportError:  # pragma: no cover - depends on the environment

    def dumps(value: Any) -> bytes:
        """Serialise to JSON bytes."""
        return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Reply:
    """One JSON answer: HTTP status and the body's `code`, `message`, `data`, `error`."""

    status: int
    code: str
    message: str
    error: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] | list[Any] = field(default_factory=dict)
    # True: the body carries a fresh `data.message_id`, and the send counts as accepted.
    carries_message_id: bool = False

    def body(self, message_id: str | None = None) -> bytes:
        """The JSON body; `message_id` goes into `data` for replies that carry one."""
        data = {"message_id": message_id} if self.carries_message_id else self.data
        return dumps(
            {"code": self.code, "message": self.message, "data": data, "error": self.error}
        )


def new_message_id() -> str:
    """A unique id shaped like Kaleyra's: letters and digits."""
    return "SBX" + uuid.uuid4().hex


_ACCEPTED = "Request Accepted"
_RBC001 = "Incorrect SID or API key."
_WA401 = "Phone number is not present or does not belong to the account."
_E110 = "Please check your balance, You have a low balance!"
_ACCOUNT = "API is not available for given customer.Please contact support for more info"
_VERSION = (
    "The phone number you're using is associated with different Version of our WA API. "
    "Please use the appropriate endpoint."
)
_DAILY_LIMIT = "Account daily limit reached"

REPLIES: dict[str, Reply] = {
    "WA202": Reply(202, "WA202", _ACCEPTED, carries_message_id=True),
    "WA200": Reply(200, "WA200", _ACCEPTED, carries_message_id=True),
    "RBC001": Reply(401, "RBC001", _RBC001, {"error": _RBC001}, data=[]),
    "WA401": Reply(401, "WA401", _WA401, {"phone_number": _WA401}),
    "WA400": Reply(
        400, "WA400", "Refer to correct payload format", {"payload": "Incorrect payload format"}
    ),
    "WA500": Reply(500, "WA500", "Please try again later", {"error": "Internal server error"}),
    "E110": Reply(400, "E110", _E110, {"balance": _E110}),
    "WA-401-account": Reply(401, "WA-401", _ACCOUNT, {"account": _ACCOUNT}),
    "WA-401-version": Reply(401, "WA-401", _VERSION, {"phone_number": _VERSION}),
    "WAV2101": Reply(429, "WAV2101", _DAILY_LIMIT, {"account": _DAILY_LIMIT}),
    # Ambiguous answers: the worker must mark these `unknown`, never resend them.
    "NO_MESSAGE_ID": Reply(202, "WA202", _ACCEPTED),
    "UNKNOWN_CODE": Reply(200, "WA999", "Unknown response"),
}

HTML_502 = "HTML_502"  # 502 with an HTML page, as a proxy in front of the API would send
DROP = "DROP"  # the request is read whole, then the connection is closed without an answer
TIMEOUT = "TIMEOUT"  # stall `timeout_seconds`, then answer WA202 (accepted only if written)
TRANSPORT_FAULTS = frozenset({HTML_502, DROP, TIMEOUT})

OUTCOMES = frozenset(REPLIES) | TRANSPORT_FAULTS
HTML_502_BODY = "<html><body>Bad Gateway</body></html>"
