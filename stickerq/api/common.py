"""What the API's routes share: the settings, JSON answers, and errors as problems."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from stickerq.accounts import ForeignSender, UnknownAccount
from stickerq.api.auth import actor_of
from stickerq.api.problems import Problem
from stickerq.errors import CampaignNotFound, MessagesPurged, ServiceUnavailable, StickerqError
from stickerq.producer import lifecycle
from stickerq.producer.failures import FilterError, MessageNotFound
from stickerq.producer.idempotency import IdempotencyConflict, IdempotencyInProgress
from stickerq.producer.operations import ResumeTargetError
from stickerq.producer.recipients import RecipientFileError
from stickerq.producer.requeue import RequeueRefused
from stickerq.producer.stickers import StickerRejected
from stickerq.producer.store import RecipientsRejected
from stickerq.producer.validity import ValidityError
from stickerq.settings import Settings

# Query and path text: a NUL cannot be stored or compared by PostgreSQL.
NO_NUL = r"^[^\x00]*$"
BIGINT_MAX = 2**63 - 1  # our ids are bigints: a larger number is no id, not a 500
CampaignId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="the campaign's id")]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(_settings)]
# Who makes the request's changes, as the audit log names them (api/auth.py, actor_of).
Actor = Annotated[str, Depends(actor_of)]


def json_answer(content: BaseModel | list[BaseModel] | dict[str, Any], status: int = 200) -> Any:
    """The same JSON as the CLI's --json (producer.views)."""
    if isinstance(content, BaseModel):
        return JSONResponse(content.model_dump(mode="json"), status_code=status)
    if isinstance(content, list):
        items = [item.model_dump(mode="json") for item in content]
        return JSONResponse(items, status_code=status)
    return JSONResponse(content, status_code=status)


def problem_of(exc: StickerqError) -> Problem:
    """The problem document for a refusal of the producer's."""
    if isinstance(exc, RecipientsRejected):
        invalid = [
            {"line": row.line, "value": row.value, "reason": row.reason}
            for row in exc.report.invalid
        ]
        return Problem(
            422,
            "invalid_recipients",
            "recipients refused: nothing was stored",
            str(exc),
            invalid_count=exc.report.invalid_count,
            invalid=invalid,
        )
    if isinstance(exc, StickerRejected):
        return Problem(
            422,
            "sticker_refused",
            "WhatsApp would refuse this sticker: nothing was stored",
            str(exc),
            problems=exc.problems,
        )
    if isinstance(exc, CampaignNotFound):
        return Problem(404, "campaign_not_found", "no such campaign", str(exc))
    if isinstance(exc, MessagesPurged):
        return Problem(410, "messages_purged", "the campaign's messages were purged", str(exc))
    if isinstance(exc, MessageNotFound):
        return Problem(404, "message_not_found", "no such message", str(exc))
    if isinstance(exc, IdempotencyInProgress):  # answered at once: no thread waits for it
        return Problem(
            409,
            "idempotency_key_in_use",
            "the first request with this key is still being stored",
            str(exc),
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, IdempotencyConflict):
        return Problem(409, "idempotency_conflict", "idempotency key conflict", str(exc))
    if isinstance(exc, UnknownAccount):
        return Problem(422, "unknown_account", "no such Kaleyra account here", str(exc))
    if isinstance(exc, ForeignSender):
        return Problem(422, "sender_not_on_account", "the sender is not the account's", str(exc))
    if isinstance(exc, ServiceUnavailable):
        return Problem(503, "service_unavailable", "a service stickerq needs is down")
    if isinstance(exc, lifecycle.CampaignStateError):
        return Problem(409, "campaign_state", "not allowed in this state", str(exc))
    if isinstance(exc, RequeueRefused):
        return Problem(409, "requeue_refused", "the messages cannot go out now", str(exc))
    if isinstance(exc, ValidityError):
        return Problem(422, "invalid_validity", "the deadline is not valid", str(exc))
    if isinstance(exc, RecipientFileError):
        return Problem(422, "invalid_recipients_file", "the recipients file is unusable", str(exc))
    if isinstance(exc, lifecycle.UnknownCampaignStatus):
        return Problem(422, "unknown_status", "unknown campaign status", str(exc))
    if isinstance(exc, FilterError | ResumeTargetError | lifecycle.PauseReasonError):
        return Problem(422, "invalid_request", "the request is not valid", str(exc))
    return Problem(422, "invalid_campaign", "the campaign is not valid", str(exc))
