"""The dashboard: a server-rendered page at / over the producer's functions, same tokens."""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from stickerq.api.dashboard.routes import router


def install(app: FastAPI) -> None:
    """The page, its live fragment and buttons, and its script and style sheet."""
    app.include_router(router)
    static = StaticFiles(packages=[("stickerq.api.dashboard", "static")])
    app.mount("/dashboard/static", static, name="dashboard-static")


__all__ = ["install", "router"]
