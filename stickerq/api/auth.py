"""Bearer tokens from STICKERQ_API_TOKENS; `TOKEN:ro` may read but not change anything."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request

from stickerq.api.problems import Problem
from stickerq.errors import ConfigurationError

READ_ONLY_SUFFIX = ":ro"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True, repr=False)  # repr=False: tokens stay out of logs
class Token:
    secret: bytes
    read_only: bool


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
        tokens.append(Token(secret.encode(), read_only))
    return tuple(tokens)


def match(tokens: tuple[Token, ...], given: bytes) -> Token | None:
    """The token equal to `given`; every one is compared, in constant time."""
    found = None
    for token in tokens:
        if hmac.compare_digest(token.secret, given):
            found = token
    return found


def require_token(request: Request) -> None:
    """Dependency of every route but health: 401 without a valid token, 403 read-only POST.
    The token was found before the body was read (api/guard.py)."""
    token: Token | None = getattr(request.state, "token", None)
    if token is None:
        raise Problem(401, "unauthorized", "a valid bearer token is needed")
    if token.read_only and request.method not in READ_METHODS:
        raise Problem(403, "read_only_token", "this token may only read")
