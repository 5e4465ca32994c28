"""Who may look and who may act: an operator's credentials, a viewer's, none."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from celeriac import Celeriac
from celeriac.dashboard import create_app

from .helpers import lifecycle

OPERATOR = ("ops", "op-pw")
VIEWER = ("guest", "view-pw")


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def client(cel: Celeriac, tmp_path: Path) -> TestClient:
    lifecycle(cel, "bad-1", name="proj.fail", outcome="task-failed", args=["x"])
    web = create_app(
        cel,
        store=tmp_path / "dash.sqlite3",
        collect=False,
        basic_auth=OPERATOR,
        api_token="op-token",
        viewer_auth=VIEWER,
        viewer_token="view-token",
    )
    web.state.dashboard.collector.drain()
    return TestClient(web)


@pytest.mark.parametrize(
    "credentials",
    [_basic(*VIEWER), {"X-API-Token": "view-token"}, {"Authorization": "Bearer view-token"}],
)
def test_a_viewer_sees_everything_and_may_act_on_nothing(
    cel: Celeriac, client: TestClient, credentials: dict[str, str]
) -> None:
    for path in ("/", "/tasks", "/task/bad-1", "/queues", "/api/tasks", "/api/openapi.json"):
        assert client.get(path, headers=credentials).status_code == 200, path
    page = client.get("/task/bad-1", headers=credentials).text
    assert "Retry (send again)" not in page and 'method="post"' not in page
    assert 'action="/tasks/bulk"' not in client.get("/tasks", headers=credentials).text
    scripted = TestClient(client.app)  # no cookie: not asked for a CSRF token
    for path in ("/api/queue/pause/q1", "/api/task/retry/bad-1"):
        refused = scripted.post(path, headers=credentials)
        assert refused.status_code == 403, path
        assert "operator" in refused.json()["error"]
    bulk = scripted.post("/api/tasks/bulk/revoke", json={"expected": 1}, headers=credentials)
    assert bulk.status_code == 403
    assert cel.control.paused() == {} and cel.broker.revocations.revoked(["bad-1"]) == set()


@pytest.mark.parametrize("credentials", [_basic(*OPERATOR), {"X-API-Token": "op-token"}])
def test_an_operator_may_act(
    cel: Celeriac, client: TestClient, credentials: dict[str, str]
) -> None:
    assert "Retry (send again)" in client.get("/task/bad-1", headers=credentials).text
    scripted = TestClient(client.app)
    assert scripted.post("/api/queue/pause/q1", headers=credentials).status_code == 200
    assert "q1" in cel.control.paused()


def test_wrong_or_no_credentials_see_nothing(client: TestClient) -> None:
    for headers in ({}, _basic("guest", "op-pw"), {"X-API-Token": "nope"}):
        assert client.get("/tasks", headers=headers).status_code == 401
    assert client.get("/healthcheck").status_code == 200
