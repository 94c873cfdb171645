"""/keys: the API keys (as `stickerq keys create|list|revoke`), for admin keys only.

A key restricted to an account manages only keys of that account: what it makes is
restricted to it too, so no key can make a key that reaches further than itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from stickerq.accounts import UnknownAccount
from stickerq.api.auth import Scope, Token, require_scope
from stickerq.api.common import NO_NUL, AppSettings, json_answer
from stickerq.api.problems import Problem, problem_responses
from stickerq.errors import StickerqError
from stickerq.producer import api_keys
from stickerq.producer.api_keys import KeyNameTaken, KeyNotFound
from stickerq.producer.validity import ValidityError
from stickerq.producer.views.keys import KeyView, NewKeyView
from stickerq.settings import Settings

router = APIRouter(
    prefix="/keys",
    tags=["keys"],
    responses=problem_responses(401, 403, 422),
)
Admin = Annotated[Token, Depends(require_scope(Scope.ADMIN))]
Name = Annotated[str, Path(max_length=64, pattern=NO_NUL, description="the key's name")]


class KeyBody(BaseModel):
    """What `stickerq keys create` takes."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=64, pattern=NO_NUL, description=api_keys.NAME_RULE)]
    scope: Annotated[Scope, Field(description="read < send < operate < admin")]
    account: Annotated[
        str | None,
        Field(max_length=64, pattern=NO_NUL, description="the only account (SID) it reaches"),
    ] = None
    expires: Annotated[
        str | None,
        Field(max_length=32, pattern=NO_NUL, description="it stops working after: 90d, 12h"),
    ] = None


def _refused(exc: StickerqError) -> Problem:
    if isinstance(exc, KeyNameTaken):
        return Problem(409, "key_name_taken", "a key has that name already", str(exc))
    if isinstance(exc, KeyNotFound):
        return Problem(404, "key_not_found", "no such key", str(exc))
    if isinstance(exc, UnknownAccount):
        return Problem(422, "unknown_account", "no such Kaleyra account here", str(exc))
    if isinstance(exc, ValidityError):
        return Problem(422, "invalid_expiry", "the expiry is not a duration", str(exc))
    return Problem(422, "invalid_key", "the key request is not valid", str(exc))


@router.post(
    "",
    status_code=201,
    response_model=NewKeyView,
    responses=problem_responses(400, 409),
)
def create_key(body: KeyBody, settings: AppSettings, caller: Admin) -> Any:
    """As `stickerq keys create`: the answer carries the key, this once; only its hash is
    stored. A key restricted to an account makes keys of that account only."""
    account = body.account
    if caller.account is not None:
        if account not in (None, caller.account):
            raise _foreign(caller)
        account = caller.account
    try:
        made = api_keys.create_key(
            settings,
            caller.name,
            body.name,
            body.scope,
            account=account,
            expires=body.expires,
        )
    except StickerqError as exc:
        raise _refused(exc) from None
    return json_answer(NewKeyView.of(made.info, key=made.key), 201)


@router.get("", response_model=list[KeyView])
async def list_keys(settings: AppSettings, caller: Admin) -> Any:
    """As `stickerq keys list --json`: every key (of the caller's account, for a key
    restricted to one), never a key's value."""
    keys = await run_in_threadpool(api_keys.list_keys, settings)
    return json_answer([KeyView.of(k) for k in keys if caller.account in (None, k.account)])


@router.delete("/{name}", response_model=KeyView, responses=problem_responses(404))
def revoke_key(name: Name, settings: AppSettings, caller: Admin) -> Any:
    """As `stickerq keys revoke`: every API process refuses it within a few seconds, and
    the dashboard sessions it opened end."""
    try:
        if caller.account is not None and not _of_account(settings, name, caller.account):
            raise KeyNotFound(f"no key of account {caller.account} is named {name!r}")
        info = api_keys.revoke_key(settings, caller.name, name)
    except StickerqError as exc:
        raise _refused(exc) from None
    return json_answer(KeyView.of(info))


def _of_account(settings: Settings, name: str, account: str) -> bool:
    return any(k.name == name and k.account == account for k in api_keys.list_keys(settings))


def _foreign(caller: Token) -> Problem:
    return Problem(
        403,
        "other_account",
        "this key is restricted to another account",
        f"{caller.name} reaches account {caller.account} only: leave `account` out, or use a "
        "key of every account",
    )
