"""/docs: Swagger UI served from an installed package, so it works without the internet.

FastAPI's own /docs page loads Swagger UI's script and style from a public CDN, and its icon
from FastAPI's site: on a host without the internet the page stays blank, and every reader
of the docs is announced to a third party. This page is the same Swagger UI (from the
swagger-ui-bundle-v2 package) served by the API itself under /docs/assets, with the online
validator badge off. ReDoc (/redoc) is not offered: it only comes from a CDN.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS = "/docs"
ASSETS = f"{DOCS}/assets"


def install(app: FastAPI) -> None:
    """Serve /docs and its assets; create the app with docs_url=None and redoc_url=None."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get(DOCS, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")  # behind a proxy's prefix
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title}: HTTP API",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # else it posts the schema out
        )
