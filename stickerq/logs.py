"""Log lines of the worker, the API and the CLI: readable text, or one JSON object a line
(STICKERQ_LOG_FORMAT=json) for a log collector.

A record carries the campaign id and our message pk where the code knows them, passed as
`extra=ids(...)`: they are read from the record, never from a context that a shared task (the
limiter's, say) could carry over from another batch. Every secret of the settings is
replaced by `***` in what is written, whatever logged it (uvicorn's access log included),
and so is the api-key of every listed account.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import SecretStr

from stickerq.errors import StickerqError
from stickerq.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What a record may carry besides its message, in the order a JSON line shows them.
FIELDS = ("campaign_id", "message_pk", "recipient", "code", "action")
REDACTED = "***"
MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words


def ids(
    campaign_id: int | None = None, message_pk: int | None = None, **fields: object
) -> dict[str, object]:
    """`extra=` for a log call: the campaign and message it is about (recipient masked)."""
    extra = {"campaign_id": campaign_id, "message_pk": message_pk, **fields}
    return {name: value for name, value in extra.items() if value is not None}


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """Every secret the settings hold, in each form a log line may show it.

    The values: every SecretStr setting (a secret added later is one by its type) and the
    api_key of every listed account (STICKERQ_ACCOUNTS_FILE or STICKERQ_ACCOUNTS). The forms:
    the whole value, each comma-separated item (tokens), an item without its `:ro`, the
    password of a `USER:PASSWORD`, and that pair base64-encoded as a Basic header carries it.
    """
    found: set[str] = set()
    for secret in _secret_values(settings):
        found.add(secret)
        for item in (item.strip() for item in secret.split(",")):
            found.update({item, item.rsplit(":", 1)[0]})
            if ":" in item:
                found.add(item.split(":", 1)[1])
                found.add(base64.b64encode(item.encode()).decode("ascii"))
    # longest first: a token that contains another is replaced whole
    return tuple(sorted((s for s in found if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True))


def _secret_values(settings: Settings) -> Iterator[str]:
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            yield value.get_secret_value()
    try:
        accounts = settings.all_accounts()
    except StickerqError:  # an unusable list: the command that needs it says so, uses none
        return
    for account in accounts:
        yield account.api_key.get_secret_value()


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class TextFormatter(logging.Formatter):
    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__(TEXT_FORMAT)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return _redact(super().format(record), self.secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, pid, the
    record's FIELDS where set, and the exception's traceback as text."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _redact(record.getMessage(), self.secrets),
            "pid": record.process,
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value if isinstance(value, int | float) else str(value)
        if record.exc_info:
            entry["exception"] = _redact(self.formatException(record.exc_info), self.secrets)
        if record.stack_info:
            entry["stack"] = _redact(self.formatStack(record.stack_info), self.secrets)
        return json.dumps(entry, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to sys.stderr as it is at each record (a test runner may swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def make_formatter(
    log_format: Literal["text", "json"], secrets: Iterable[str] = ()
) -> logging.Formatter:
    secrets = tuple(secrets)
    return JsonFormatter(secrets) if log_format == "json" else TextFormatter(secrets)


def setup_logging(settings: Settings, level: str | int | None = None) -> None:
    """Log to stderr in the settings' format; called again, it replaces its own handler only
    (a test runner's handlers stay). `level` sets the root logger's level when given."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(old)
    handler = StderrHandler()
    handler.setFormatter(make_formatter(settings.log_format, secrets_of(settings)))
    root.addHandler(handler)
    if level is not None:
        root.setLevel(level.upper() if isinstance(level, str) else level)
    # Python's warnings (a library's deprecation notice) become records in the same format.
    logging.captureWarnings(settings.log_format == "json")
