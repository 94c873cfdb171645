"""schemathesis over the app's own OpenAPI schema: generated requests to every route find no
500, and every answer (status, content type, body) is one the schema declares."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from stickerq.api import create_app
from tests.api.conftest import BODY, TOKEN, WRITE
from tests.conftest import make_settings

CALLBACK_SECRET = "schema-test-callback-secret"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# The schema does not depend on the settings: each test gives the app a database of its own.
APP = create_app(make_settings("sqlite://", "unused:", "http://127.0.0.1:9", api_tokens=TOKEN))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture
def app_database(sqlite_database: str, redis_prefix: str) -> None:
    """A migrated database with campaign 1 in it (generated ids mostly find none: 404)."""
    APP.state.settings = make_settings(
        sqlite_database,
        redis_prefix,
        "http://127.0.0.1:9",
        api_tokens=TOKEN,
        callback_secret=CALLBACK_SECRET,  # unset, every callback is a 503 (a server error)
    )
    assert TestClient(APP).post("/campaigns", json=BODY, headers=WRITE).status_code == 201


# 50 generated requests per operation (besides the schema's examples and the coverage phase's
# boundary values): the module runs in about 40 s on two cores. On PostgreSQL it took twice
# that; the limits of its stricter columns are tested in tests/api/test_out_of_range.py.
@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_route_answers_a_500_or_outside_its_schema(
    case: schemathesis.Case, app_database: None
) -> None:
    case.call_and_validate(headers=WRITE, checks=CHECKS)
