"""The dashboard's login: an API token exchanged for a signed session cookie, and CSRF checks.

The cookie holds no token: only an HMAC fingerprint of the one used to log in and a random
CSRF value, signed (itsdangerous) with a key derived from every configured token. Changing
STICKERQ_API_TOKENS therefore ends every session, and a session outlives no token it was
made with. Whether a session may act is read from the configured token each time, never
from the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from stickerq.api.auth import Token, match
from stickerq.api.problems import Problem

SESSION_COOKIE = "stickerq_session"
LOGIN_COOKIE = "stickerq_login"  # the login form's CSRF nonce (double submit)
SESSION_SECONDS = 12 * 3600
LOGIN_FORM_SECONDS = 3600


@dataclass(frozen=True, slots=True, repr=False)
class Viewer:
    """Who is looking: whether they may act, and the CSRF value their forms must carry."""

    read_only: bool
    csrf: str


class Sessions:
    """Signs and reads the dashboard's cookies for one set of configured tokens."""

    def __init__(self, tokens: tuple[Token, ...]) -> None:
        self._tokens = tokens
        material = b"\0".join(t.secret + (b":ro" if t.read_only else b"") for t in tokens)
        self._key = hashlib.sha256(b"stickerq dashboard session\0" + material).digest()
        self._signer = URLSafeTimedSerializer(self._key, salt="stickerq-dashboard")
        self._fingerprints = [(self._fingerprint(t.secret), t) for t in tokens]

    def _fingerprint(self, secret: bytes) -> str:
        return hmac.new(self._key, secret, hashlib.sha256).hexdigest()

    def log_in(self, given: str, response: Response, request: Request) -> Viewer | None:
        """Set the session cookie if `given` is a configured token; None if it is not."""
        token = match(self._tokens, given.strip().encode())
        if token is None:
            return None
        csrf = secrets.token_urlsafe(24)
        value = self._signer.dumps({"k": self._fingerprint(token.secret), "c": csrf})
        _set_cookie(response, request, SESSION_COOKIE, value, SESSION_SECONDS, "/")
        return Viewer(token.read_only, csrf)

    def viewer(self, request: Request) -> Viewer | None:
        """The logged-in viewer of this request, or None (no cookie, forged, expired, or its
        token is no longer configured)."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=SESSION_SECONDS)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        found = None
        for fingerprint, token in self._fingerprints:
            if hmac.compare_digest(fingerprint, str(data.get("k", ""))):
                found = token
        if found is None:
            return None
        return Viewer(found.read_only, str(data.get("c", "")))


def check_csrf(expected: str, given: str | None) -> None:
    """403 unless the form carried the session's CSRF value."""
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise Problem(
            403,
            "csrf_failed",
            "the form is stale or was not sent by the dashboard",
            "reload the page and try again",
        )


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def set_login_nonce(response: Response, request: Request, nonce: str) -> None:
    """The login form's nonce as a cookie, which the form's POST must match."""
    _set_cookie(response, request, LOGIN_COOKIE, nonce, LOGIN_FORM_SECONDS, "/login")


def login_nonce_matches(request: Request, given: str) -> bool:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    return bool(expected and given) and hmac.compare_digest(expected, given)


def log_out(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def _set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int, path: str
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",  # uvicorn --proxy-headers behind a TLS proxy
    )
