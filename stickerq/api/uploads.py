"""A campaign's fields as JSON or as multipart form fields, and its recipients CSV spooled
to a temporary file in chunks (the producer streams CSV files from disk, so the upload is
never held whole in memory)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from stickerq.producer.request import CampaignRequest, Timing

FILE_FIELD = "recipients"
CHUNK = 1 << 16
MAX_FORM_FIELDS = 32


class CampaignFields(BaseModel):
    """What `stickerq send` takes besides its recipients."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is refused, not ignored

    sticker_id: str | None = None
    sticker_link: str | None = None
    sender: str | None = None
    account: str | None = Field(
        default=None,
        max_length=64,
        description="like send --account: the Kaleyra account (SID); default: the only one",
    )
    name: str | None = None
    ref: str | None = None
    ref1: str | None = None
    ref2: str | None = None
    wa_source: str = "api"
    skip_invalid: bool = False
    no_check: bool = Field(
        default=False,
        description="like send --no-check: store a sticker_link without fetching it first",
    )
    scheduled_at: datetime | str | None = Field(default=None, description="like send --at")
    tz: str | None = None
    every: str | None = Field(default=None, description="a cron expression read in tz")
    now_if_past: bool = False
    valid_for: str | None = Field(
        default=None, max_length=32, description="like send --valid-for: 6h, 90m, 1d"
    )
    valid_until: datetime | str | None = Field(
        default=None, description="like send --valid-until (without an offset: read in tz)"
    )
    in_window: bool | None = Field(
        default=None,
        description="like send --in-window: send only where the recipient's 24-hour window "
        "with the sender is open; the others end outside_window (default STICKERQ_IN_WINDOW)",
    )
    to_window: bool = Field(
        default=False,
        description="like send --to-window: the recipients are every customer who wrote to the "
        "sender within window_since, from the window ledger (then no recipients; in_window "
        "defaults to true)",
    )
    window_since: str | None = Field(
        default=None,
        max_length=40,
        description="like send --since, with to_window: 24h (the default), 2d or an ISO time",
    )

    def request(self, *, to: str | None = None, to_file: Path | None = None) -> CampaignRequest:
        timing = {"scheduled_at", "tz", "every", "now_if_past"}
        fields = self.model_dump(exclude={*timing, "recipients"})
        return CampaignRequest(to=to, to_file=to_file, **fields)

    def timing(self) -> Timing:
        return Timing(
            at=self.scheduled_at, tz=self.tz, every=self.every, now_if_past=self.now_if_past
        )


class CampaignBody(CampaignFields):
    """`stickerq send` as JSON."""

    recipients: list[str] | str | None = Field(
        default=None,
        description="E.164 numbers: a list or comma-separated (none with to_window)",
    )

    @model_validator(mode="after")
    def _recipients_or_window(self) -> CampaignBody:
        if self.recipients is None and not self.to_window:
            raise ValueError("give recipients, or to_window with the sender whose customers wrote")
        return self

    def recipient_count(self) -> int:
        """How many recipients the body names (before normalising and dropping duplicates)."""
        if self.recipients is None:
            return 0
        if isinstance(self.recipients, list):
            return len(self.recipients)
        return self.recipients.count(",") + 1

    def joined(self) -> str | None:
        if self.recipients is None:
            return None
        return self.recipients if isinstance(self.recipients, str) else ",".join(self.recipients)


def invalid(errors: Sequence[Any], where: str = "body") -> RequestValidationError:
    """pydantic's errors as FastAPI's, so they answer the same `invalid_request` problem."""
    return RequestValidationError(
        [{**error, "loc": (where, *error.get("loc", ()))} for error in errors]
    )


def json_body(raw: bytes) -> CampaignBody:
    try:
        return CampaignBody.model_validate_json(raw or b"null")
    except ValidationError as exc:
        raise invalid(exc.errors(include_url=False)) from None


def form_schema() -> dict[str, Any]:
    """The multipart form's JSON Schema: the fields, and the CSV file as `recipients`."""
    schema = CampaignFields.model_json_schema()
    schema["title"] = "CampaignForm"
    schema["properties"][FILE_FIELD] = {
        "type": "string",
        "format": "binary",
        "description": "a CSV file: a phone column, optional ref, ref1, ref2 columns, and an "
        "optional from column (the business number each row is sent from)",
    }
    schema["required"] = [FILE_FIELD]
    return schema


@asynccontextmanager
async def uploaded(request: Request) -> AsyncIterator[tuple[CampaignFields, Path, str]]:
    """The form's fields, the CSV as a file of its own, and the name the client gave it.

    Starlette spools the part to a temporary file as it arrives (in memory up to 1 MB); it
    is copied in chunks to a named file, which the producer reads row by row. Both are
    removed once the campaign is stored or refused.
    """
    async with request.form(max_files=1, max_fields=MAX_FORM_FIELDS) as form:
        upload = form.get(FILE_FIELD)
        if not isinstance(upload, UploadFile):
            raise invalid([_missing_file()])
        fields: dict[str, str] = {}
        for name, value in form.multi_items():
            if name == FILE_FIELD:
                continue
            if not isinstance(value, str) or name in fields:
                raise invalid([_error(name, "give it once, as text")])
            if value:  # an empty form field is one not given
                fields[name] = value
        try:
            body = CampaignFields.model_validate(fields)
        except ValidationError as exc:
            raise invalid(exc.errors(include_url=False)) from None
        with tempfile.TemporaryDirectory(prefix="stickerq-upload-") as folder:
            path = Path(folder) / "recipients.csv"
            await run_in_threadpool(_copy, upload.file, path)
            yield body, path, upload.filename or "recipients.csv"


def _copy(source: BinaryIO, path: Path) -> None:
    source.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(source, out, CHUNK)


def _missing_file() -> dict[str, Any]:
    return {
        "type": "missing",
        "loc": (FILE_FIELD,),
        "msg": "a CSV file in the form field `recipients` is required",
        "input": None,
    }


def _error(name: str, message: str) -> dict[str, Any]:
    return {"type": "value_error", "loc": (name,), "msg": message, "input": None}
