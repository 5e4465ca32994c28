"""The API's OpenAPI schema: valid, served, and in step with the routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from celeriac import Celeriac
from celeriac.dashboard import api, create_app
from celeriac.dashboard.bulk import BULK_ACTIONS


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Starlette]:
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    app = Celeriac("t", broker=url, set_as_current=False)
    yield create_app(app, store=tmp_path / "dash.sqlite3", collect=False, api_token="tok")
    app.close()


def test_the_schema_is_valid_openapi_and_lists_every_api_route(web: Starlette) -> None:
    """Expect each JSON route (path and method) in the schema, and nothing the API lacks."""
    reply = TestClient(web).get("/api/openapi.json", headers={"X-API-Token": "tok"})
    assert reply.status_code == 200
    document = reply.json()
    validate(document)
    routes = {
        (route.path, method.lower())
        for route in api.ROUTES
        if isinstance(route, Route) and route.path.startswith("/api/")
        for method in (route.methods or ()) - {"HEAD"}
    }
    described = {
        (path, method) for path, operations in document["paths"].items() for method in operations
    }
    assert described == routes
    assert document["servers"] == [{"url": "/"}]


def test_the_bulk_endpoints_are_described(web: Starlette) -> None:
    bulk = TestClient(web).get("/api/openapi.json", headers={"X-API-Token": "tok"}).json()
    operations = bulk["paths"]["/api/tasks/bulk/{action}"]
    names = {p["name"] for p in operations["post"]["parameters"]}
    assert {"action", "expected", "snapshot", "dry_run", "state", "taskname", "since"} <= names
    [action] = [p for p in operations["get"]["parameters"] if p["name"] == "action"]
    assert action["schema"]["enum"] == list(BULK_ACTIONS)
    assert "409" in operations["post"]["responses"]


def test_mounted_the_schema_names_its_prefix(web: Starlette) -> None:
    host = Starlette(routes=[Mount("/ops", web)])
    document = TestClient(host).get("/ops/api/openapi.json", headers={"X-API-Token": "tok"})
    assert document.json()["servers"] == [{"url": "/ops"}]
