"""The dashboard mounted under a path prefix inside another Starlette application."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from celeriac import Celeriac
from celeriac.dashboard import create_app

from .helpers import lifecycle

PREFIX = "/ops/dashboard"


def host_app(dashboard: Starlette) -> Starlette:
    """A site of its own, with the dashboard under PREFIX and its lifespan entered."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with dashboard.router.lifespan_context(dashboard):
            yield

    async def home(_: Any) -> PlainTextResponse:
        return PlainTextResponse("the host site")

    return Starlette(routes=[Route("/", home), Mount(PREFIX, dashboard)], lifespan=lifespan)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _wait_for(client: TestClient, path: str, predicate: Any, **options: Any) -> Any:
    """GET ``path`` until ``predicate(reply)`` holds (the collector thread stores events)."""
    deadline = time.monotonic() + 20
    while True:
        reply = client.get(path, **options)
        if predicate(reply):
            return reply
        assert time.monotonic() < deadline, f"{path}: {reply.status_code} {reply.text[:200]}"
        time.sleep(0.05)


def test_pages_links_assets_api_and_actions_work_under_a_prefix(
    cel: Celeriac, tmp_path: Path
) -> None:
    """Given the dashboard mounted at /ops/dashboard with basic auth, Expect its collector
    to run with the host's lifespan, every link, asset and form to point under the
    prefix, the healthcheck open, the API and the live stream answering there, and a
    form's POST (with the CSRF token) to act and come back under the prefix."""
    lifecycle(cel, "bad-1", name="proj.fail", outcome="task-failed", args=["x"])
    dashboard = create_app(cel, store=tmp_path / "dash.sqlite3", basic_auth=("ops", "pw"))
    auth = _basic("ops", "pw")
    with TestClient(host_app(dashboard)) as client:
        assert client.get("/").text == "the host site"
        assert client.get(f"{PREFIX}/healthcheck").text == "OK"  # open, as at the root
        assert client.get(f"{PREFIX}/tasks").status_code == 401
        api = _wait_for(client, f"{PREFIX}/api/tasks", lambda r: "bad-1" in r.text, headers=auth)
        assert api.json()["bad-1"]["state"] == "FAILURE"
        page = client.get(f"{PREFIX}/tasks", headers=auth).text
        for link in ("/static/app.css", "/static/app.js", "/task/bad-1", "/workers", "/queues"):
            assert f'"{PREFIX}{link}"' in page, link
        assert f'data-stream="{PREFIX}/live"' in page
        assert client.get(f"{PREFIX}/static/app.js", headers=auth).status_code == 200
        with client.stream("GET", f"{PREFIX}/live", headers=auth) as stream:
            first = [line for _, line in zip(range(3), stream.iter_lines(), strict=False)]
        assert "event: hello" in first
        task_page = client.get(f"{PREFIX}/task/bad-1", headers=auth)
        assert f'action="{PREFIX}/api/task/retry/bad-1"' in task_page.text
        assert f'name="next" value="{PREFIX}/task/bad-1"' in task_page.text
        token = client.cookies["celeriac_csrf"]
        forged = client.post(f"{PREFIX}/api/queue/pause/q1", headers=auth)
        assert forged.status_code == 403 and cel.control.paused() == {}
        done = client.post(
            f"{PREFIX}/api/queue/pause/q1",
            data={"csrf_token": token, "next": f"{PREFIX}/queues"},
            headers=auth,
            follow_redirects=False,
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"{PREFIX}/queues?msg=Paused+q1"
        assert "q1" in cel.control.paused()
        queues = client.get(done.headers["location"], headers=auth).text
        assert "Paused q1" in queues and f'action="{PREFIX}/api/queue/resume/q1"' in queues


def test_a_dashboard_mounted_without_its_lifespan_still_collects(
    cel: Celeriac, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Given a host that does not enter the dashboard's lifespan, Expect the collector to
    start at the first request (with a warning saying how to run it properly)."""
    lifecycle(cel, "ok-1")
    dashboard = create_app(cel, store=tmp_path / "dash.sqlite3")
    host = Starlette(routes=[Mount(PREFIX, dashboard)])
    try:
        with TestClient(host) as client:
            reply = _wait_for(client, f"{PREFIX}/api/tasks", lambda r: "ok-1" in r.text)
            assert reply.json()["ok-1"]["state"] == "SUCCESS"
        assert "lifespan" in caplog.text
    finally:
        dashboard.state.dashboard.collector.stop()
