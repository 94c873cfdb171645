"""/docs works without the internet: Swagger UI's files come from the API itself, to a
caller without a token too (a browser sends none for a page's script and style)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from stickerq.api import create_app
from tests.api.conftest import TOKEN, WRITE
from tests.conftest import make_settings

REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")


def test_docs_page_references_no_external_host_and_serves_each_asset_itself() -> None:
    settings = make_settings("sqlite://", "p:", "http://127.0.0.1:9", api_tokens=TOKEN)
    client = TestClient(create_app(settings))  # no token sent: a browser sends none

    page = client.get("/docs")

    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assert "://" not in page.text  # no CDN, no font or icon host, no online validator
    references = [a or b for a, b in REFERENCE.findall(page.text)]
    assert len(references) >= 4  # style, icon, script, and the schema
    for reference in references:
        assert reference.startswith("/") and not reference.startswith("//"), reference
        asset = client.get(reference)
        assert asset.status_code == 200 and asset.content, reference
    assert client.get("/redoc", headers=WRITE).status_code == 404  # ReDoc only comes from a CDN
    assert client.get("/docs/assets/..%2F..%2Fpyproject.toml").status_code == 404
    assert client.get("/docs/assets/index.html").status_code == 404  # only the page's files
