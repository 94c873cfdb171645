"""The dashboard's login: an API token or key exchanged for a session, and CSRF checks.

A session lives on the server, in Redis: a random id whose key names what opened it (an
HMAC fingerprint of a STICKERQ_API_TOKENS token, or a database key's hash, never a key), with
a time to live of STICKERQ_SESSION_IDLE_MINUTES renewed at each use. Logging out deletes it,
so a kept cookie opens nothing afterwards. The cookie carries the id and a random CSRF value,
signed (itsdangerous) with a key derived from a random secret kept in Redis beside the
sessions (made by the first API process that needs it: losing it loses only the sessions,
which Redis held anyway) and from every configured token, and is refused after
SESSION_SECONDS whatever its use: changing STICKERQ_API_TOKENS therefore ends every session.
What a session may do is read afresh on each request, never from the cookie: from the
configured token, or from the database key (api/key_cache.py: within TTL_SECONDS of its
revocation or expiry, its sessions open nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

import redis
from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection

from stickerq.api.auth import Token, match
from stickerq.api.key_cache import KeyCache
from stickerq.api.problems import Problem
from stickerq.keys import dashboard_secret_key, dashboard_session_key
from stickerq.producer.api_keys import KEY_PREFIX, hash_key
from stickerq.scopes import Scope

SESSION_COOKIE = "stickerq_session"
LOGIN_COOKIE = "stickerq_login"  # the login form's CSRF nonce (double submit)
SESSION_SECONDS = 12 * 3600
LOGIN_FORM_SECONDS = 3600
ENV_TOKEN, DATABASE_KEY = "env:", "key:"  # what a session's value starts with


@dataclass(frozen=True, slots=True, repr=False)
class Viewer:
    """Who is looking: the token or key that opened the session (its scope, account and
    name), and the CSRF value their forms must carry."""

    token: Token
    csrf: str

    @property
    def name(self) -> str:  # the actor of its changes
        return self.token.name

    @property
    def read_only(self) -> bool:
        return self.token.read_only

    @property
    def may_operate(self) -> bool:
        """Pause, resume, cancel, requeue and lift pauses: the operate scope."""
        return self.token.scope.allows(Scope.OPERATE)

    @property
    def account(self) -> str | None:
        return self.token.account


class Sessions:
    """Opens, reads and ends the dashboard's sessions for the configured tokens and the
    database's keys."""

    def __init__(
        self,
        tokens: tuple[Token, ...],
        keys: KeyCache,
        store: redis.Redis,
        prefix: str,
        idle_seconds: int,
    ) -> None:
        self._tokens, self._keys = tokens, keys
        self._store, self._prefix, self._idle = store, prefix, idle_seconds
        self._material = b"\0".join(t.secret + (b":ro" if t.read_only else b"") for t in tokens)
        self._key: bytes | None = None
        self._key_lock = threading.Lock()

    def _signing_key(self, fresh: bool = False) -> bytes:
        """The deployment's secret from Redis (made once, by whoever comes first) with every
        configured token; read again when `fresh`: a Redis that lost it (and its sessions
        with it) has a new one, made by the first process to log someone in again. Raises
        redis.RedisError when Redis cannot be reached."""
        with self._key_lock:
            if self._key is None or fresh:
                where = dashboard_secret_key(self._prefix)
                self._store.set(where, secrets.token_bytes(32), nx=True)
                secret = self._store.get(where)
                if not isinstance(secret, bytes):  # deleted between the two calls
                    raise redis.RedisError("the dashboard's secret vanished; try again")
                material = b"stickerq dashboard session\0" + secret + b"\0" + self._material
                self._key = hashlib.sha256(material).digest()
            return self._key

    def _signer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._signing_key(), salt="stickerq-dashboard")

    def _fingerprint(self, secret: bytes) -> str:
        return hmac.new(self._signing_key(), secret, hashlib.sha256).hexdigest()

    def _stored(self, session_id: str) -> str:
        """The Redis key of a session: a hash of its id, so a read of Redis opens none."""
        digest = hashlib.sha256(session_id.encode()).hexdigest()
        return dashboard_session_key(self._prefix, digest)

    def log_in(self, given: str, response: Response, request: Request) -> Viewer | None:
        """Open a session and set its cookie if `given` is a configured token or a usable
        database key; None if not."""
        given = given.strip()
        self._signing_key(fresh=True)  # sign with the deployment's secret of now
        token = match(self._tokens, given.encode())
        if token is not None:
            opened_by = ENV_TOKEN + self._fingerprint(token.secret)
        else:
            key_hash = hash_key(given)
            token = self._keys.find_by_hash(key_hash) if given.startswith(KEY_PREFIX) else None
            if token is None:
                return None
            opened_by = DATABASE_KEY + key_hash
        session_id, csrf = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self._store.set(self._stored(session_id), opened_by, ex=self._idle)
        value = self._signer().dumps({"s": session_id, "c": csrf})
        _set_cookie(response, request, SESSION_COOKIE, value, SESSION_SECONDS, "/")
        return Viewer(token, csrf)

    def viewer(self, request: HTTPConnection) -> Viewer | None:
        """The logged-in viewer of this request, or None (no cookie, forged, too old, logged
        out, idle too long, its token no longer configured, its key revoked or expired).
        Each use renews the idle time. Raises redis.RedisError when the sessions cannot be
        read, sqlalchemy's errors when a key cannot be."""
        data = self._cookie(request)
        if data is None:
            return None
        stored = self._store.getex(self._stored(data["s"]), ex=self._idle)
        if not isinstance(stored, bytes):
            return None
        opened_by = stored.decode(errors="replace")
        token = None
        if opened_by.startswith(DATABASE_KEY):
            token = self._keys.find_by_hash(opened_by.removeprefix(DATABASE_KEY))
        elif opened_by.startswith(ENV_TOKEN):
            given = opened_by.removeprefix(ENV_TOKEN).encode()
            for known in self._tokens:
                if hmac.compare_digest(self._fingerprint(known.secret).encode(), given):
                    token = known
        return Viewer(token, data["c"]) if token is not None else None

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
            data = self._signer().loads(cookie, max_age=SESSION_SECONDS)
        except BadSignature:
            # signed since with a new secret (Redis lost the old one)? One more read of it.
            known = self._key
            if self._signing_key(fresh=True) == known:
                return None
            try:
                data = self._signer().loads(cookie, max_age=SESSION_SECONDS)
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
