"""What the sandbox remembers: the request log, accepted sends, counters, scripts and the
customer service windows opened by customer messages (sandbox/windows.py).

Only the server's event loop touches it, so no lock is needed; `choose` decides and counts
nothing across an `await`, so concurrent sends cannot both take the last unit of balance.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict, deque
from collections.abc import Mapping
from typing import Any

from stickerq.sandbox.config import SandboxConfig, changed_config
from stickerq.sandbox.payload import StickerSend
from stickerq.sandbox.replies import OUTCOMES
from stickerq.sandbox.windows import Windows

_NESTED = ("body", "headers")  # the parts of a logged request kept as JSON text


class ScriptError(ValueError):
    """A script is not a mapping of recipient to a list of known outcome names."""


class SandboxState:
    """The sandbox's memory, cleared by `reset` (the config stays)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget every request, acceptance, counter, script and opened window; restart the
        random WA500s."""
        self.requests: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self.accepted_by_recipient: Counter[str] = Counter()
        self.by_code: Counter[str] = Counter()
        self.scripts: defaultdict[str, deque[str]] = defaultdict(deque)
        self.rng = random.Random(self.config.seed)
        self.media: dict[str, tuple[str, bytes]] = {}  # media id -> (MIME type, file)
        self.windows = Windows()

    def reconfigure(self, changes: Mapping[str, Any]) -> SandboxConfig:
        """Apply checked config changes; a new seed restarts the random WA500s."""
        self.config = changed_config(self.config, changes)
        if "seed" in changes:
            self.rng = random.Random(self.config.seed)
        return self.config

    def add_script(self, script: Any) -> dict[str, int]:
        """Append outcomes to recipients' queues; all or nothing. Returns the queue lengths."""
        if not isinstance(script, dict):
            raise ScriptError('a script is a JSON object: {"+919812345678": ["WA500", "WA202"]}')
        for recipient, outcomes in script.items():
            if not isinstance(outcomes, list) or not all(isinstance(o, str) for o in outcomes):
                raise ScriptError(f"outcomes for {recipient} must be a list of names")
            unknown = sorted(set(outcomes) - OUTCOMES)
            if unknown:
                raise ScriptError(f"unknown outcomes {unknown}; known: {sorted(OUTCOMES)}")
        for recipient, outcomes in script.items():
            self.scripts[recipient].extend(outcomes)
        return {recipient: len(self.scripts[recipient]) for recipient in script}

    def choose(self, recipient: str) -> str:
        """A valid send's outcome: low balance, else scripted, else random WA500, else WA202."""
        balance = self.config.balance
        if balance is not None and len(self.accepted) >= balance:
            return "E110"
        queue = self.scripts.get(recipient)
        if queue:
            return queue.popleft()
        if self.config.wa500_rate and self.rng.random() < self.config.wa500_rate:
            return "WA500"
        return "WA202"

    def log_request(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Log a send on arrival; `record_answer` fills in its answer later.

        Body and headers are kept as JSON text: a log entry then holds only strings and
        numbers, which the cyclic garbage collector stops scanning. With parsed ones, each
        full collection over a load test's log stalled the sandbox for 100+ ms, and the
        arrivals queued meanwhile were logged at once, as a burst nobody sent.
        """
        entry.update(http_status=None, code=None, message_id=None, outcome=None)
        for nested in _NESTED:
            entry[nested] = json.dumps(entry.get(nested))
        self.requests.append(entry)
        return entry

    def request_log(self) -> list[dict[str, Any]]:
        """Every send request, in order of arrival, with body and headers parsed again."""
        return [
            {**entry, **{nested: json.loads(entry[nested]) for nested in _NESTED}}
            for entry in self.requests
        ]

    def record_answer(
        self,
        entry: dict[str, Any],
        *,
        outcome: str,
        http_status: int | None,
        code: str | None,
        message_id: str | None = None,
        send: StickerSend | None = None,
    ) -> None:
        """Complete a logged request; a message_id on a valid send counts it as accepted."""
        entry.update(http_status=http_status, code=code, message_id=message_id, outcome=outcome)
        self.by_code[code or outcome] += 1
        if message_id is None or send is None:
            return
        self.accepted_by_recipient[send.recipient] += 1
        self.accepted.append(
            {
                "at": entry["at"],
                "recipient": send.recipient,
                "sender": entry["sender"],
                "message_id": message_id,
                "ref": send.ref,
                "ref1": send.ref1,
                "ref2": send.ref2,
                "wa_source": send.wa_source,
            }
        )

    def stats(self) -> dict[str, Any]:
        """Counts of requests, acceptances (in total and per recipient) and answer codes."""
        return {
            "requests": len(self.requests),
            "accepted_total": len(self.accepted),
            "accepted": dict(self.accepted_by_recipient),
            "by_code": dict(self.by_code),
        }
