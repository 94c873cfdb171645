"""A scope on every route, read from the app's own OpenAPI schema: a route missing from the
table below fails, and each route refuses a key one scope below its own (403) and lets a
key of its own scope through (no 401 or 403), on both backends."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from stickerq.api import create_app
from stickerq.producer.api_keys import create_key
from stickerq.scopes import Scope
from tests.api.conftest import READ_ONLY, TOKEN
from tests.conftest import SENDER, make_settings

READ, SEND, OPERATE, ADMIN = Scope.READ, Scope.SEND, Scope.OPERATE, Scope.ADMIN

# Every route of the schema and the scope it needs (DESIGN: read < send < operate < admin).
SCOPE_OF = {
    "GET /campaigns": READ,
    "POST /campaigns": SEND,
    "GET /campaigns/{campaign_id}": READ,
    "POST /campaigns/{campaign_id}/pause": OPERATE,
    "POST /campaigns/{campaign_id}/resume": OPERATE,
    "POST /campaigns/{campaign_id}/cancel": OPERATE,
    "GET /campaigns/{campaign_id}/messages": READ,
    "GET /messages/{message_id}": READ,
    "GET /campaigns/{campaign_id}/report": READ,
    "GET /campaigns/{campaign_id}/export.csv": READ,
    "POST /requeue": OPERATE,
    "GET /pauses": READ,
    "POST /pauses/resume": OPERATE,
    "GET /suppressions": READ,
    "POST /suppressions": OPERATE,
    "GET /suppressions/{number}": READ,
    "DELETE /suppressions/{number}": OPERATE,
    "POST /suppressions/import": OPERATE,
    "DELETE /recipients/{number}": OPERATE,  # issue 23: operate scope or an admin token
    "GET /senders": READ,
    "PUT /senders/{number}/rate": OPERATE,
    "DELETE /senders/{number}/rate": OPERATE,
    "GET /accounts": READ,
    "GET /windows/stats": READ,
    "GET /windows/{number}": READ,
    "POST /windows/import": OPERATE,
    "GET /keys": ADMIN,
    "POST /keys": ADMIN,
    "DELETE /keys/{name}": ADMIN,
    "GET /audit": ADMIN,
    "GET /webhooks": ADMIN,
    "POST /webhooks": ADMIN,
    "DELETE /webhooks/{webhook_id}": ADMIN,
    "GET /webhooks/{webhook_id}/deliveries": ADMIN,
    "POST /webhooks/{webhook_id}/test": ADMIN,
}
# Routes with rules of their own, tested where they live: probes, the scrape (its own
# token), Kaleyra's callbacks (their secret in the path).
OWN_RULES = {
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "POST /callbacks/kaleyra/{secret}",
    "POST /callbacks/kaleyra/{secret}/incoming",
    "GET /callbacks/kaleyra/{secret}/incoming",
}
PARAMETERS = {
    "campaign_id": "1",
    "number": SENDER,
    "message_id": "mid-1",
    "name": "crm",
    "webhook_id": "1",
}
# Enough of a body that the route would act (then answers 404, 409 or 422 for want of data).
BODIES = {
    "POST /campaigns": {"sticker_id": "media-1", "recipients": ["+919812345678"]},
    "POST /requeue": {"campaign_id": 1, "status": "parked", "dry_run": True},
    "POST /pauses/resume": {"sender": SENDER},
    "POST /suppressions": {"numbers": ["+919812345678"]},
    "PUT /senders/{number}/rate": {"rate_per_second": 80},
    "POST /keys": {"name": "made-here", "scope": "read"},
}


def schema_routes() -> set[str]:
    app = create_app(make_settings("sqlite:///:memory:", "scopes:", "http://127.0.0.1:9"))
    return {
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


def test_every_route_of_the_schema_has_a_scope_or_rules_of_its_own() -> None:
    routes = schema_routes()

    assert routes - SCOPE_OF.keys() - OWN_RULES == set(), "give each new route its scope here"
    assert (SCOPE_OF.keys() | OWN_RULES) - routes == set(), "a route left: drop its entry"


@pytest.fixture
def keyed(database_url: str, redis_prefix: str) -> tuple[TestClient, dict[Scope, str]]:
    """The API and a database key of each scope."""
    settings = make_settings(
        database_url, redis_prefix, "http://127.0.0.1:9", api_tokens=f"{TOKEN},{READ_ONLY}:ro"
    )
    keys = {scope: create_key(settings, "test", f"k-{scope}", scope).key for scope in Scope}
    return TestClient(create_app(settings), raise_server_exceptions=False), keys


def _call(client: TestClient, route: str, key: str) -> tuple[int, str]:
    method, path = route.split(" ", 1)
    answer = client.request(
        method,
        path.format(**PARAMETERS),
        json=BODIES.get(route),
        headers={"Authorization": f"Bearer {key}"},
    )
    try:
        body = answer.json()
    except ValueError:  # the CSV export
        body = None
    return answer.status_code, body.get("code", "") if isinstance(body, dict) else ""


@pytest.mark.parametrize("route", sorted(SCOPE_OF))
def test_a_key_below_the_scope_is_refused_and_one_of_it_is_let_through(
    keyed: tuple[TestClient, dict[Scope, str]], route: str
) -> None:
    client, keys = keyed
    needed = SCOPE_OF[route]

    assert _call(client, route, "sq_" + "x" * 43)[0] == 401  # no such key
    below = needed.below()
    if below is not None:
        assert _call(client, route, keys[below]) == (403, "insufficient_scope")
    status, code = _call(client, route, keys[needed])
    assert status not in (401, 403), (status, code)


@pytest.mark.parametrize("route", sorted(r for r, scope in SCOPE_OF.items() if scope != READ))
def test_the_environments_read_token_may_only_read_and_its_admin_token_do_all(
    keyed: tuple[TestClient, dict[Scope, str]], route: str
) -> None:
    client, _ = keyed

    assert _call(client, route, READ_ONLY) == (403, "insufficient_scope")
    assert _call(client, route, TOKEN)[0] not in (401, 403)
