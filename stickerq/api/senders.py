"""/senders: per-sender rates (as `stickerq senders ...`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from stickerq.api.auth import Scope, needs
from stickerq.api.common import NO_NUL, Actor, AppSettings, json_answer
from stickerq.api.problems import Problem, problem_responses
from stickerq.api.reach import Reach, foreign_account
from stickerq.errors import StickerqError
from stickerq.producer import senders
from stickerq.producer.senders import MAX_RATE, TIERS
from stickerq.producer.views.senders import SenderRateChangeView, SenderRatesView, SenderRateView

router = APIRouter(
    prefix="/senders",
    tags=["senders"],
    dependencies=[needs(Scope.READ)],
    responses=problem_responses(401, 403, 422),
)
CHANGES = problem_responses(403)
Number = Annotated[str, Path(max_length=40, pattern=NO_NUL, description="the number, E.164")]


class RateBody(BaseModel):
    """What `stickerq senders set-rate` takes."""

    model_config = ConfigDict(extra="forbid")

    rate_per_second: Annotated[
        float, Field(gt=0, le=MAX_RATE, description=f"messages per second. {TIERS}")
    ]


def sender_in_reach(number: Number, settings: AppSettings, account: Reach) -> None:
    """A key restricted to an account sets the rates of the numbers its account lists only
    (a rate is every worker's, whatever the campaign)."""
    if account is not None and number.strip() not in settings.account(account).senders:
        raise foreign_account(account, f"sender {number}")


def _refused(exc: StickerqError) -> Problem:
    return Problem(422, "invalid_sender_rate", "the sender rate request is not valid", str(exc))


@router.get("", response_model=SenderRatesView)
def list_senders(settings: AppSettings) -> Any:
    """As `stickerq senders list --json`: the stored rates and the default."""
    rates = senders.list_rates(settings)
    views = [SenderRateView.of(info) for info in rates.senders]
    return json_answer(SenderRatesView.of(rates, senders=views))


# 400: a body that is not JSON at all (FastAPI's answer before the body model is read)
@router.put(
    "/{number}/rate",
    response_model=SenderRateChangeView,
    dependencies=[needs(Scope.OPERATE), Depends(sender_in_reach)],
    responses=CHANGES | problem_responses(400),
)
def set_sender_rate(number: Number, body: RateBody, settings: AppSettings, actor: Actor) -> Any:
    """As `stickerq senders set-rate`: every worker uses it from its next request on."""
    try:
        info = senders.set_rate(settings, number, body.rate_per_second, actor=actor)
    except StickerqError as exc:
        raise _refused(exc) from None
    return json_answer(SenderRateChangeView.of(info))


@router.delete(
    "/{number}/rate",
    response_model=SenderRateChangeView,
    dependencies=[needs(Scope.OPERATE), Depends(sender_in_reach)],
    responses=CHANGES,
)
def reset_sender_rate(number: Number, settings: AppSettings, actor: Actor) -> Any:
    """As `stickerq senders reset`: the number sends at STICKERQ_RATE_PER_SECOND again."""
    try:
        info = senders.reset_rate(settings, number, actor=actor)
    except StickerqError as exc:
        raise _refused(exc) from None
    return json_answer(SenderRateChangeView.of(info))
