"""/recipients/{number}: erase a phone number from every table (as `stickerq erase`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from stickerq.api.auth import Scope, needs
from stickerq.api.common import NO_NUL, Actor, AppSettings, json_answer, problem_of
from stickerq.api.problems import Problem, problem_responses
from stickerq.api.reach import every_account
from stickerq.errors import StickerqError
from stickerq.producer.erasure import ErasureError, erase_number
from stickerq.producer.views.erasure import ErasureView
from stickerq.suppression_list import ErasureKeyMissing

router = APIRouter(
    prefix="/recipients",
    tags=["recipients"],
    # issue 23: "operate scope or the admin token"; a number is erased from every account
    dependencies=[needs(Scope.OPERATE), Depends(every_account)],
    responses=problem_responses(401),
)

Number = Annotated[str, Path(max_length=40, pattern=NO_NUL, description="the number, E.164")]


@router.delete(
    "/{number}", response_model=ErasureView, responses=problem_responses(403, 404, 409, 422, 503)
)
def erase_recipient(
    number: Number,
    settings: AppSettings,
    actor: Actor,
    dry_run: Annotated[bool, Query(description="count what would go, change nothing")] = False,
) -> Any:
    """As `stickerq erase --json`: the number's messages and attempts, callbacks, request
    hashes and text go; a suppressed number stays suppressed as a keyed hash. 404
    `not_found`: no table holds it. 409 `erasure_key_missing`: it is suppressed and
    STICKERQ_ERASURE_KEY is not set (nothing changed). `complete` false: messages a worker was
    sending were left; erase again. A key below the operate scope, or restricted to an
    account, gets 403."""
    try:
        result = erase_number(settings, number, actor=actor, dry_run=dry_run)
    except ErasureKeyMissing as exc:
        raise Problem(409, "erasure_key_missing", "the erasure key is not set", str(exc)) from None
    except ErasureError as exc:
        raise Problem(422, "invalid_number", "the number is not valid", str(exc)) from None
    except StickerqError as exc:
        raise problem_of(exc) from None
    view = ErasureView.of_result(result)
    if not result.found:
        raise Problem(404, "not_found", "no table holds the number", f"nothing holds {view.phone}")
    return json_answer(view)
