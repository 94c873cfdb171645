"""The dashboard: a server-rendered page at / over the producer's functions, same tokens."""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from stickerq.api.dashboard.board import BoardReader
from stickerq.api.dashboard.routes import router
from stickerq.api.dashboard.sessions import Sessions


def install(app: FastAPI) -> None:
    """The page, its live fragment and buttons, and its script and style sheet; after
    app.state.tokens is set (its sessions are signed with a key made from them)."""
    app.state.dashboard_sessions = Sessions(app.state.tokens)
    app.state.dashboard_board = BoardReader(app.state.settings)
    app.include_router(router)
    static = StaticFiles(packages=[("stickerq.api.dashboard", "static")])
    app.mount("/dashboard/static", static, name="dashboard-static")


__all__ = ["install", "router"]
