"""The dashboard: a server-rendered page at / over the producer's functions, same tokens."""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from stickerq.api.dashboard.board import BoardReader
from stickerq.api.dashboard.routes import router
from stickerq.api.dashboard.sessions import Sessions


def install(app: FastAPI, sessions: Sessions) -> None:
    """The page, its live fragment and buttons, and its script and style sheet."""
    app.state.dashboard_sessions = sessions
    app.state.dashboard_board = BoardReader(app.state.settings)
    app.include_router(router)
    static = StaticFiles(packages=[("stickerq.api.dashboard", "static")])
    app.mount("/dashboard/static", static, name="dashboard-static")


__all__ = ["install", "router"]
