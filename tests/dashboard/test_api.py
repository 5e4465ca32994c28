"""The web app through Starlette's TestClient: pages, Flower's API shapes, metrics, access."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from celeriac import Celeriac
from celeriac.dashboard import create_app
from celeriac.message import decode

from .helpers import dashboard_client, emit, lifecycle


def _history(cel: Celeriac) -> None:
    lifecycle(cel, "ok-1", name="proj.add", args=[1, 2])
    lifecycle(cel, "bad-1", name="proj.fail", outcome="task-failed", args=["x"])
    emit(
        cel,
        "worker-heartbeat",
        hostname="w1@host",
        freq=2.0,
        active=1,
        processed=7,
        pool_size=4,
        queues=["celeriac"],
    )


def _waiting(cel: Celeriac, queue: str = "celeriac") -> list[Any]:
    deliveries = cel.broker.fetch([queue], "test", 100, 0.0)
    return [decode(d.body, cel.codec, d) for d in deliveries]


def test_pages_render_the_stored_history(cel: Celeriac, tmp_path: Path) -> None:
    _history(cel)
    client = dashboard_client(cel, tmp_path)
    overview = client.get("/")
    assert overview.status_code == 200
    assert 'id="workers-online">1<' in overview.text
    tasks = client.get("/tasks", params={"state": "FAILURE"})
    assert "bad-1" in tasks.text and "ok-1" not in tasks.text
    task = client.get("/task/bad-1")
    assert "task-received" in task.text and "ValueError: boom" in task.text
    assert "w1@host" in client.get("/workers").text
    partial = client.get("/tasks", params={"partial": "1"})
    assert "<html" not in partial.text and "ok-1" in partial.text


def test_flower_api_shapes(cel: Celeriac, tmp_path: Path) -> None:
    _history(cel)
    client = dashboard_client(cel, tmp_path)
    tasks = client.get("/api/tasks", params={"taskname": "proj.add"}).json()
    assert list(tasks) == ["ok-1"]
    assert tasks["ok-1"]["uuid"] == "ok-1" and tasks["ok-1"]["state"] == "SUCCESS"
    assert client.get("/api/task/types").json() == {"task-types": ["proj.add", "proj.fail"]}
    info = client.get("/api/task/info/bad-1").json()
    assert info["exception"] == "ValueError('boom')" and info["worker"] == "w1@host"
    assert client.get("/api/task/info/nope").status_code == 404
    assert client.get("/api/workers").json()["w1@host"]["processed"] == 7
    sent = client.post("/api/task/async-apply/proj.add", json={"args": [5, 6]}).json()
    assert sent["state"] == "PENDING"
    assert client.get("/api/queues/length").json() == {
        "active_queues": [{"name": "celeriac", "messages": 1}]
    }
    [message] = _waiting(cel)
    assert (message.id, message.task, list(message.args)) == (sent["task-id"], "proj.add", [5, 6])
    assert client.get("/healthcheck").text == "OK"


def test_retry_sends_the_task_again_with_the_same_arguments(cel: Celeriac, tmp_path: Path) -> None:
    _history(cel)
    client = dashboard_client(cel, tmp_path)
    answer = client.post("/api/task/retry/bad-1").json()
    [message] = _waiting(cel)
    assert (message.id, message.task, list(message.args)) == (answer["task-id"], "proj.fail", ["x"])
    assert client.post("/api/task/retry/unknown").status_code == 404


def test_metrics_use_flower_names(cel: Celeriac, tmp_path: Path) -> None:
    _history(cel)
    web = create_app(cel, store=tmp_path / "dash.sqlite3", collect=False)
    web.state.dashboard.collector.drain()  # the hook counts what it stores
    text = TestClient(web).get("/metrics").text
    for name in (
        "flower_events_total",
        "flower_task_runtime_seconds",
        "flower_task_prefetch_time_seconds",
        "flower_worker_online",
        "flower_worker_number_of_currently_executing_tasks",
    ):
        assert name in text
    assert 'flower_worker_online{worker="w1@host"} 1.0' in text
    assert 'flower_events_total{task="proj.add",type="task-started",worker="w1@host"} 1.0' in text
    assert "flower_worker_prefetched_tasks" in text


def test_queue_pause_and_resume(cel: Celeriac, tmp_path: Path) -> None:
    client = dashboard_client(cel, tmp_path)
    assert client.post("/api/queue/pause/q1").status_code == 200
    assert "q1" in cel.control.paused()
    rows = client.get("/api/queues").json()
    assert [r["queue"] for r in rows if r["paused"]] == ["q1"]
    client.post("/api/queue/resume/q1")
    assert cel.control.paused() == {}


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_auth_read_only_and_csrf(cel: Celeriac, tmp_path: Path) -> None:
    client = dashboard_client(cel, tmp_path, basic_auth=("admin", "s3cret"), api_token="tok")
    assert client.get("/").status_code == 401
    assert client.get("/healthcheck").status_code == 200
    assert client.post("/api/queue/pause/q1").status_code == 401
    assert client.get("/", headers=_basic("admin", "wrong")).status_code == 401
    page = client.get("/queues", headers=_basic("admin", "s3cret"))
    assert page.status_code == 200
    token = client.cookies["celeriac_csrf"]  # the browser now sends a cookie: CSRF applies
    refused = client.post("/api/queue/pause/q1", headers=_basic("admin", "s3cret"))
    assert refused.status_code == 403 and cel.control.paused() == {}
    form = {"csrf_token": token, "next": "/queues"}
    done = client.post(
        "/api/queue/pause/q1", data=form, headers=_basic("admin", "s3cret"), follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/queues?msg=")
    assert "q1" in cel.control.paused()
    scripted = TestClient(client.app).post("/api/queue/resume/q1", headers={"X-API-Token": "tok"})
    assert scripted.status_code == 200 and cel.control.paused() == {}
    read_only = dashboard_client(cel, tmp_path, read_only=True)
    assert read_only.post("/api/queue/pause/q1").status_code == 403
    assert "Pause" not in read_only.get("/queues").text or "q1" not in cel.control.paused()
