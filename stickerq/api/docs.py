"""/docs: Swagger UI served from an installed package, so it works without the internet.

FastAPI's own /docs page loads Swagger UI's script and style from a public CDN, and its icon
from FastAPI's site: on a host without the internet the page stays blank, and every reader
of the docs is announced to a third party. This page is the same Swagger UI (from the
swagger-ui-bundle-v2 package) served by the API itself, with the online validator badge off.
ReDoc (/redoc) is not offered: it only comes from a CDN.

Its files are served under /docs/assets/, which the request guard (api/guard.py) answers
to anyone, like /docs itself: a browser sends no token for a page's script and style.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, Response
from starlette.exceptions import HTTPException
from swagger_ui_bundle import swagger_ui_path

DOCS = "/docs"
ASSETS = DOCS + "/assets"  # open to anyone, as /docs is (api/guard.py)
# The files the page loads, and their types; nothing else of the package is served.
FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def install(app: FastAPI) -> None:
    """Serve /docs and its files; create the app with docs_url=None and redoc_url=None."""

    @app.get(ASSETS + "/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in FILES:
            raise HTTPException(404, f"no file {name!r} in the docs: only {', '.join(FILES)}")
        return FileResponse(swagger_ui_path / name, media_type=FILES[name])

    @app.get(DOCS, include_in_schema=False)
    async def docs(request: Request) -> Response:
        root = request.scope.get("root_path", "").rstrip("/")  # behind a proxy's prefix
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title}: HTTP API",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # else it posts the schema out
        )
