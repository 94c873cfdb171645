"""The dashboard's routes: login, the page at /, its live fragment, and the operator's buttons.

Every action calls the producer function the CLI calls (lifecycle, requeue, operations) and
answers JSON (`message`, `warnings`) or a problem document; the page's script shows either.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from stickerq.api.dashboard.board import Board, BoardReader, of_account
from stickerq.api.dashboard.sessions import (
    LOGIN_COOKIE,
    Sessions,
    Viewer,
    check_csrf,
    current_viewer,
    login_nonce_matches,
    new_nonce,
    set_login_nonce,
)
from stickerq.api.dashboard.templating import templates
from stickerq.api.problems import Problem
from stickerq.errors import CampaignNotFound, ServiceUnavailable, StickerqError
from stickerq.producer import lifecycle
from stickerq.producer.operations import resume_sending
from stickerq.producer.reach import check_reach
from stickerq.producer.requeue import requeue
from stickerq.settings import Settings

router = APIRouter(include_in_schema=False)
T = TypeVar("T")

# A strict policy: our own script and style only, no inline code, no framing (clickjacking).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.dashboard_sessions
    return sessions


def _board(request: Request) -> BoardReader:
    board: BoardReader = request.app.state.dashboard_board
    return board


def _board_for(request: Request, who: Viewer) -> Board:
    return of_account(_board(request).read(), who.account)


def _html(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def viewer(request: Request) -> Viewer:
    """Dependency of the fragment and the actions: 401 without a valid session."""
    found = current_viewer(request)
    if found is None:
        raise Problem(401, "not_logged_in", "log in at /login with an API token")
    return found


def actor(request: Request, who: Annotated[Viewer, Depends(viewer)]) -> Viewer:
    """Dependency of every button: a session of the operate scope and the form's CSRF value."""
    if not who.may_operate:
        raise Problem(
            403,
            "insufficient_scope",
            f"this key's scope is {who.token.scope}; the dashboard's buttons need operate",
            "log in with a key of the operate scope",
        )
    check_csrf(who.csrf, request.headers.get("x-csrf-token"))
    return who


@router.get("/", response_class=HTMLResponse)
def page(request: Request) -> Response:
    who = current_viewer(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    return _html(request, "page.html", viewer=who, board=_board_for(request, who))


@router.get("/dashboard/board", response_class=HTMLResponse)
def board_fragment(request: Request, who: Annotated[Viewer, Depends(viewer)]) -> Response:
    """The live part of the page, polled by its script."""
    return _html(request, "board.html", viewer=who, board=_board_for(request, who))


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    if current_viewer(request) is not None:
        return RedirectResponse("/", status_code=303)
    return _login_page(request)


def _login_page(request: Request, error: str = "", status: int = 200) -> Response:
    """The login form with a fresh CSRF nonce, in its field and in a cookie."""
    nonce = new_nonce()
    response = _html(request, "login.html", status, error=error, nonce=nonce)
    set_login_nonce(response, request, nonce)
    return response


@router.post("/login", response_class=HTMLResponse)
def log_in(
    request: Request, token: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = ""
) -> Response:
    if not login_nonce_matches(request, csrf):
        return _login_page(request, "the form expired: log in again", 403)
    response = RedirectResponse("/", status_code=303)
    if _sessions(request).log_in(token, response, request) is None:
        address = request.client.host if request.client else ""
        request.app.state.throttle.failed(address, "login")
        return _login_page(request, "that token is not valid", 401)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, who: Annotated[Viewer, Depends(viewer)]) -> Response:
    check_csrf(who.csrf, request.headers.get("x-csrf-token"))
    response = JSONResponse({"message": "logged out"})
    _sessions(request).log_out(request, response)
    return response


def _run(
    request: Request, who: Viewer, action: Callable[[], T], campaign_id: int | None = None
) -> T:
    """Call a producer function for a button: its refusals become problem documents, and
    the next poll reads the board afresh. Another account's campaign is as if absent to a
    key restricted to one."""
    try:
        if campaign_id is not None:
            check_reach(_settings(request), campaign_id, who.account)
        return action()
    except CampaignNotFound:
        raise Problem(404, "campaign_not_found", f"no campaign {campaign_id}") from None
    except ServiceUnavailable as exc:
        detail = str(exc)
        raise Problem(
            503, "service_unavailable", "a service stickerq needs is down", detail
        ) from None
    except lifecycle.CampaignStateError as exc:
        raise Problem(409, "campaign_state", "not allowed in this state", str(exc)) from None
    except StickerqError as exc:
        raise Problem(409, "refused", "refused", str(exc)) from None
    finally:
        _board(request).invalidate()


def _done(message: str, warnings: list[str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message, "warnings": warnings or []})


def _changed(result: lifecycle.LifecycleResult) -> JSONResponse:
    return _done(result.message, result.warnings)


@router.post("/dashboard/campaigns/{campaign_id}/pause")
def pause(campaign_id: int, request: Request, who: Annotated[Viewer, Depends(actor)]) -> Response:
    settings, reason = _settings(request), "paused from the dashboard"
    action = partial(lifecycle.pause_campaign, settings, campaign_id, reason, actor=who.name)
    return _changed(_run(request, who, action, campaign_id))


@router.post("/dashboard/campaigns/{campaign_id}/resume")
def resume(campaign_id: int, request: Request, who: Annotated[Viewer, Depends(actor)]) -> Response:
    action = partial(lifecycle.resume_campaign, _settings(request), campaign_id, actor=who.name)
    return _changed(_run(request, who, action, campaign_id))


@router.post("/dashboard/campaigns/{campaign_id}/cancel")
def cancel(campaign_id: int, request: Request, who: Annotated[Viewer, Depends(actor)]) -> Response:
    action = partial(lifecycle.cancel_campaign, _settings(request), campaign_id, actor=who.name)
    return _changed(_run(request, who, action, campaign_id))


@router.post("/dashboard/pauses/resume")
def lift_pause(
    request: Request,
    who: Annotated[Viewer, Depends(actor)],
    sid: Annotated[str, Form()],
    sender: Annotated[str, Form()] = "",
) -> Response:
    """Lift an account pause (no sender) or a sender's, as `stickerq resume`; a key
    restricted to an account lifts that account's only."""
    if who.account not in (None, sid):
        raise Problem(403, "other_account", f"account {sid} is not this key's account")
    account = None if sender else sid
    action = partial(
        resume_sending,
        _settings(request),
        actor=who.name,
        account=account,
        sender=sender or None,
        within=sid,
    )
    lifted, batches = _run(request, who, action)
    target = f"sender {sender}" if sender else f"account {sid}"
    return _done(f"{target}: {lifted} pause(s) lifted; {batches} batch(es) dispatched")


@router.post("/dashboard/campaigns/{campaign_id}/requeue")
def requeue_failures(
    campaign_id: int,
    request: Request,
    who: Annotated[Viewer, Depends(actor)],
    status: Annotated[str, Form()],
    code: Annotated[str, Form()] = "",
    resume: Annotated[bool, Form()] = False,
) -> Response:
    """Move a campaign's parked, failed or unknown messages back to pending, as `requeue`."""
    settings = _settings(request)
    action = partial(
        requeue, settings, campaign_id, status, code=code or None, resume=resume, actor=who.name
    )
    result = _run(request, who, action, campaign_id)
    chosen = result.status + (f" {result.code}" if result.code else "")
    message = (
        f"campaign {campaign_id}: {result.requeued:,} {chosen} message(s) requeued, "
        f"{result.batches} batch(es) dispatched"
    )
    if result.pauses_lifted:
        message += f"; {result.pauses_lifted} pause(s) lifted"
    return _done(message)
