"""Who calls the API: a bearer token, its name, scope and account.

STICKERQ_API_TOKENS' tokens are admin keys named `env:1`, `env:2`... by their place in the
list; `TOKEN:ro` is a read key. A scope allows what every scope below it allows.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from stickerq.api.problems import Problem
from stickerq.errors import ConfigurationError
from stickerq.scopes import Scope

__all__ = ["Scope", "Token", "actor_of", "match", "needs", "parse_tokens", "require_scope"]

READ_ONLY_SUFFIX = ":ro"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True, repr=False)  # repr=False: tokens stay out of logs
class Token:
    secret: bytes  # a STICKERQ_API_TOKENS token; b"" for a database key (api/key_cache.py)
    scope: Scope
    name: str  # the actor of what it changes (the audit log), never secret
    account: str | None = None  # an account (SID) it is restricted to; None: every account

    @property
    def read_only(self) -> bool:
        return self.scope is Scope.READ


MIN_TOKEN_LENGTH = 16


def parse_tokens(configured: str) -> tuple[Token, ...]:
    """STICKERQ_API_TOKENS read; a token shorter than MIN_TOKEN_LENGTH is refused (named by
    its place in the list, never by its value)."""
    tokens = []
    items = [part.strip() for part in configured.split(",")]
    for place, item in enumerate((item for item in items if item), start=1):
        read_only = item.endswith(READ_ONLY_SUFFIX)
        secret = item.removesuffix(READ_ONLY_SUFFIX) if read_only else item
        if len(secret) < MIN_TOKEN_LENGTH:
            raise ConfigurationError(
                f"STICKERQ_API_TOKENS: token {place} is shorter than {MIN_TOKEN_LENGTH} "
                "characters; make each with `openssl rand -hex 24`"
            )
        scope = Scope.READ if read_only else Scope.ADMIN
        tokens.append(Token(secret.encode(), scope, f"env:{place}"))
    return tuple(tokens)


def match(tokens: tuple[Token, ...], given: bytes) -> Token | None:
    """The token equal to `given`; every one is compared, in constant time."""
    found = None
    for token in tokens:
        if token.secret and hmac.compare_digest(token.secret, given):
            found = token
    return found


def require_token(request: Request) -> None:
    """401 without a valid token, 403 for a read key's POST: the rule before scopes, kept
    for a route not yet given one (`needs(scope)`). The token was found before the body was
    read (api/guard.py)."""
    token: Token | None = getattr(request.state, "token", None)
    if token is None:
        raise Problem(401, "unauthorized", "a valid bearer token is needed")
    if token.read_only and request.method not in READ_METHODS:
        raise Problem(403, "read_only_token", "this token may only read")


def require_scope(needed: Scope) -> Callable[[Request], Token]:
    """A route's dependency: 401 without a valid token, 403 when its scope is below `needed`."""

    def check(request: Request) -> Token:
        token: Token | None = getattr(request.state, "token", None)
        if token is None:
            raise Problem(401, "unauthorized", "a valid bearer token is needed")
        if not token.scope.allows(needed):
            raise Problem(
                403,
                "insufficient_scope",
                f"this key's scope is {token.scope}; this needs {needed}",
                f"use a key with the {needed} scope (stickerq keys create --scope {needed})",
            )
        return token

    return check


def needs(scope: Scope) -> Any:
    """`dependencies=[needs(Scope.OPERATE)]`: a router's or a route's scope."""
    return Depends(require_scope(scope))


def actor_of(request: Request) -> str:
    """The name of who makes this request's changes: its token's, or its dashboard session's
    (api/guard.py found one of them before the route ran)."""
    token: Token | None = getattr(request.state, "token", None)
    if token is not None:
        return token.name
    viewer = getattr(request.state, "viewer", None)
    if viewer is not None:
        return str(viewer.name)
    raise Problem(401, "unauthorized", "a valid bearer token is needed")
