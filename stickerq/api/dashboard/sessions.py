"""The dashboard's login: an API token exchanged for a session, and CSRF checks.

A session lives on the server, in Redis: a random id whose key holds an HMAC fingerprint of
the token used to log in, with a time to live of STICKERQ_SESSION_IDLE_MINUTES renewed at
each use. Logging out deletes the key, so a kept cookie opens nothing afterwards. The
cookie carries the id and a random CSRF value, signed (itsdangerous) with a key derived
from every configured token, and is refused after SESSION_SECONDS whatever its use: changing
STICKERQ_API_TOKENS therefore ends every session, and a session outlives no token it was
made with. Whether a session may act is read from the configured token each time, never
from the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import redis
from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection

from stickerq.api.auth import Token, match
from stickerq.api.problems import Problem
from stickerq.keys import dashboard_session_key

SESSION_COOKIE = "stickerq_session"
LOGIN_COOKIE = "stickerq_login"  # the login form's CSRF nonce (double submit)
SESSION_SECONDS = 12 * 3600
LOGIN_FORM_SECONDS = 3600


@dataclass(frozen=True, slots=True, repr=False)
class Viewer:
    """Who is looking: whether they may act, and the CSRF value their forms must carry."""

    read_only: bool
    csrf: str
    name: str  # the name of the token that opened the session: the actor of its changes


class Sessions:
    """Opens, reads and ends the dashboard's sessions for one set of configured tokens."""

    def __init__(
        self, tokens: tuple[Token, ...], store: redis.Redis, prefix: str, idle_seconds: int
    ) -> None:
        self._tokens = tokens
        self._store, self._prefix, self._idle = store, prefix, idle_seconds
        material = b"\0".join(t.secret + (b":ro" if t.read_only else b"") for t in tokens)
        self._key = hashlib.sha256(b"stickerq dashboard session\0" + material).digest()
        self._signer = URLSafeTimedSerializer(self._key, salt="stickerq-dashboard")
        self._fingerprints = [(self._fingerprint(t.secret), t) for t in tokens]

    def _fingerprint(self, secret: bytes) -> str:
        return hmac.new(self._key, secret, hashlib.sha256).hexdigest()

    def _stored(self, session_id: str) -> str:
        """The Redis key of a session: a hash of its id, so a read of Redis opens none."""
        digest = hashlib.sha256(session_id.encode()).hexdigest()
        return dashboard_session_key(self._prefix, digest)

    def log_in(self, given: str, response: Response, request: Request) -> Viewer | None:
        """Open a session and set its cookie if `given` is a configured token; None if not."""
        token = match(self._tokens, given.strip().encode())
        if token is None:
            return None
        session_id, csrf = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self._store.set(self._stored(session_id), self._fingerprint(token.secret), ex=self._idle)
        value = self._signer.dumps({"s": session_id, "c": csrf})
        _set_cookie(response, request, SESSION_COOKIE, value, SESSION_SECONDS, "/")
        return Viewer(token.read_only, csrf, token.name)

    def viewer(self, request: HTTPConnection) -> Viewer | None:
        """The logged-in viewer of this request, or None (no cookie, forged, too old, logged
        out, idle too long, or its token is no longer configured). Each use renews the idle
        time. Raises redis.RedisError when the sessions cannot be read."""
        data = self._cookie(request)
        if data is None:
            return None
        stored = self._store.getex(self._stored(data["s"]), ex=self._idle)
        if not isinstance(stored, bytes):
            return None
        found = None
        for known, token in self._fingerprints:
            if hmac.compare_digest(known.encode(), stored):
                found = token
        if found is None:
            return None
        return Viewer(found.read_only, data["c"], found.name)

    def log_out(self, request: HTTPConnection, response: Response) -> None:
        """End the session on the server, and drop its cookie."""
        data = self._cookie(request)
        if data is not None:
            self._store.delete(self._stored(data["s"]))
        response.delete_cookie(SESSION_COOKIE, path="/")

    def _cookie(self, request: HTTPConnection) -> dict[str, str] | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=SESSION_SECONDS)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "sc"):
            return None
        return {"s": data["s"], "c": data["c"]}


def current_viewer(request: Request) -> Viewer | None:
    """The dashboard session the guard found for this request (api/guard.py), if any."""
    found: Viewer | None = getattr(request.state, "viewer", None)
    return found


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
