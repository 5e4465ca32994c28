"""The task list's time range (``since``, ``until``) through the API and the page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from celeriac import Celeriac
from celeriac.dashboard import create_app

from .helpers import lifecycle


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """Given tasks first seen 3 days, 2 hours and 5 minutes ago, stored by the collector."""
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    app = Celeriac("t", broker=url, backend=url, set_as_current=False)
    now = time.time()
    for task_id, age in (("days-old", 3 * 86400), ("hours-old", 2 * 3600), ("fresh", 300)):
        lifecycle(app, task_id, at=now - age)
    web = create_app(app, store=tmp_path / "dash.sqlite3", collect=False)
    web.state.dashboard.collector.drain()
    with TestClient(web) as test_client:
        yield test_client
    web.state.dashboard.store.close()
    app.close()


def _ids(client: TestClient, **params: str) -> list[str]:
    reply = client.get("/api/tasks", params=params)
    assert reply.status_code == 200, reply.text
    return list(reply.json())


def test_since_takes_durations_timestamps_and_iso_times(client: TestClient) -> None:
    assert _ids(client) == ["fresh", "hours-old", "days-old"]
    assert _ids(client, since="15m") == ["fresh"]
    assert _ids(client, since="24h") == ["fresh", "hours-old"]
    assert _ids(client, since="7d") == ["fresh", "hours-old", "days-old"]
    hour_ago = time.time() - 3600
    assert _ids(client, since=str(hour_ago)) == ["fresh"]
    iso = datetime.fromtimestamp(hour_ago, timezone.utc).isoformat()
    assert _ids(client, since=iso) == ["fresh"]
    assert _ids(client, since=iso.replace("+00:00", "Z")) == ["fresh"]


def test_until_bounds_the_range_with_the_other_filters(client: TestClient) -> None:
    assert _ids(client, until="1h") == ["hours-old", "days-old"]
    assert _ids(client, since="1d", until="1h") == ["hours-old"]
    assert _ids(client, since="1d", until="1h", state="SUCCESS", search="proj.add") == ["hours-old"]
    assert _ids(client, since="1d", until="1h", state="FAILURE") == []


def test_a_wrong_time_is_a_400_that_says_what_to_give(client: TestClient) -> None:
    reply = client.get("/api/tasks", params={"since": "yesterday"})
    assert reply.status_code == 400
    assert "since='yesterday'" in reply.json()["error"]
    assert "15m" in reply.json()["error"]
    reply = client.get("/api/tasks", params={"since": "1h", "until": "2h"})
    assert reply.status_code == 400
    assert "not before" in reply.json()["error"]
    page = client.get("/tasks", params={"until": "nan"})
    assert page.status_code == 400
    assert "until=" in page.text


def test_the_task_list_page_offers_and_keeps_the_range(client: TestClient) -> None:
    page = client.get("/tasks", params={"since": "1h"})
    assert page.status_code == 200
    assert '<option value="1h" selected>' in page.text
    assert "/task/fresh" in page.text
    assert "/task/hours-old" not in page.text
    for value in ("15m", "24h", "7d"):
        assert f'<option value="{value}"' in page.text
