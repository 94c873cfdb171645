"""From a Kaleyra reply to exactly one action: the contract's outcome table, as data."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stickerq.sending_attempts import SENT_ACTION
from stickerq.states import MessageStatus, PauseScope
from stickerq.worker.kaleyra import Reply, TransportFailure


class Action(StrEnum):
    SENT = SENT_ACTION  # accepted; message_id stored (a WA202 one on the message's row)
    RETRY = "retry"  # WA500: try again (quickly, then durably)
    PARK = "park"  # wait for an operator (E110, WA401, WAV2101)
    FAIL = "fail"  # final
    UNKNOWN = "unknown"  # the request may have gone out; never resent automatically
    NOT_SENT = "not_sent"  # nothing left this host: stays due, not an API attempt


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    pause: PauseScope | None = None
    reason: str = ""


# code -> (action, what to pause). WA-401 depends on its error key, see classify().
OUTCOME_TABLE: dict[str, tuple[Action, PauseScope | None]] = {
    "WA202": (Action.SENT, None),
    "WA200": (Action.SENT, None),
    "WA500": (Action.RETRY, None),
    "E110": (Action.PARK, PauseScope.ACCOUNT),
    "WA401": (Action.PARK, PauseScope.SENDER),
    "WAV2101": (Action.PARK, PauseScope.ACCOUNT),
    "RBC001": (Action.FAIL, PauseScope.ACCOUNT),
    "WA400": (Action.FAIL, None),
}

FINAL_STATUS: dict[Action, MessageStatus] = {
    Action.SENT: MessageStatus.SENT,
    Action.PARK: MessageStatus.PARKED,
    Action.FAIL: MessageStatus.FAILED,
    Action.UNKNOWN: MessageStatus.UNKNOWN,
}


def classify(reply: Reply) -> Outcome:
    if reply.failure is TransportFailure.NOT_SENT:
        return Outcome(Action.NOT_SENT, reason="no connection could be made")
    if reply.failure is TransportFailure.AMBIGUOUS:
        return Outcome(Action.UNKNOWN, reason=f"no answer after sending: {reply.detail}")
    if not reply.json_body:
        return Outcome(Action.UNKNOWN, reason=f"HTTP {reply.http_status} with a non-JSON body")
    if reply.code == "WA-401":
        # Two meanings: the account may not use this API, or the number is on another version.
        scope = PauseScope.SENDER if "phone_number" in reply.error_keys else PauseScope.ACCOUNT
        return Outcome(Action.FAIL, scope, reason=reply.detail or "WA-401")
    if reply.code not in OUTCOME_TABLE:
        return Outcome(
            Action.UNKNOWN, reason=f"HTTP {reply.http_status} with unknown code {reply.code!r}"
        )
    action, pause = OUTCOME_TABLE[reply.code]
    if action is Action.SENT and not reply.message_id:
        return Outcome(Action.UNKNOWN, reason=f"{reply.code} without a message_id")
    return Outcome(action, pause, reason=reply.detail or reply.code)
