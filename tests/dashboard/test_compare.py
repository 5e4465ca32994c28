"""What operators compare, from a stored history: per task name over the last hour (rate,
failure share, p50/p95 runtime), failures grouped by exception, the chart's time axis,
relative times; and forgetting an offline worker from the page and the command line."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from celeriac import Celeriac
from celeriac.cli.main import cli
from celeriac.dashboard.compare import by_task_name, failures_grouped
from celeriac.dashboard.pages import ago
from celeriac.events.worker import PRESENCE_PREFIX

from .helpers import dashboard_client, emit


def _finished(
    cel: Celeriac, task_id: str, name: str, runtime: float, at: float, **outcome: str
) -> None:
    emit(cel, "task-sent", uuid=task_id, name=name, args=[], kwargs={}, timestamp=at)
    kind = "task-failed" if outcome else "task-succeeded"
    emit(cel, kind, uuid=task_id, hostname="w1@host", runtime=runtime, timestamp=at + 1, **outcome)


def test_per_task_name_and_failures_by_exception(cel: Celeriac, tmp_path: Path) -> None:
    """Given ten proj.fast tasks of 10..100 ms and four proj.flaky (two ValueError('boom'),
    one KeyError('x'), one success) in the last hour, and one of two hours ago, Expect
    proj.fast first with p50 60 ms and p95 100 ms, proj.flaky's failure share 75%, and
    the failures grouped most frequent first."""
    now = time.time()
    for i in range(1, 11):
        _finished(cel, f"fast-{i}", "proj.fast", i / 100, now - 600 + i)
    _finished(cel, "flaky-ok", "proj.flaky", 0.2, now - 300)
    _finished(cel, "flaky-1", "proj.flaky", 0.1, now - 200, exception="ValueError('boom')")
    _finished(cel, "flaky-2", "proj.flaky", 0.1, now - 100, exception="ValueError('boom')")
    _finished(cel, "flaky-3", "proj.flaky", 0.1, now - 50, exception="KeyError('x')")
    _finished(cel, "old", "proj.flaky", 0.1, now - 7200, exception="OSError('old')")
    client = dashboard_client(cel, tmp_path)
    store = client.app.state.dashboard.store  # type: ignore[attr-defined]

    fast, flaky = by_task_name(store, now=now)
    assert (fast["name"], fast["finished"], fast["failed"]) == ("proj.fast", 10, 0)
    assert (fast["p50"], fast["p95"]) == (0.06, 0.1)
    assert abs(fast["per_minute"] - 10 / 60) < 1e-9
    assert (flaky["name"], flaky["finished"], flaky["failure_share"]) == ("proj.flaky", 4, 0.75)
    grouped = failures_grouped(store, now=now)
    assert [(f["exception"], f["count"], f["type"]) for f in grouped] == [
        ("ValueError('boom')", 2, "ValueError"),
        ("KeyError('x')", 1, "KeyError"),
    ]
    assert grouped[0]["example"] in ("flaky-1", "flaky-2")

    page = client.get("/").text
    assert "By task, last hour" in page and "75.0%" in page and "60.0 ms" in page
    assert "ValueError(&#39;boom&#39;)" in page and "min ago" in page
    assert page.count('<div class="axis"') == 1 and '<span style="left:' in page


def test_relative_times_read_as_people_say_them() -> None:
    now = 1_000_000.0
    assert [ago(now - s, now) for s in (5, 150, 7200, 3 * 86400)] == [
        "5 s ago", "2 min ago", "2 h ago", "3 days ago",
    ]  # fmt: skip
    assert ago(now + 120, now) == "in 2 min" and ago(None, now) == "-"


def test_an_offline_worker_is_forgotten_and_an_online_one_is_not(
    cel: Celeriac, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given an offline worker and one online in the history, Expect Forget offered for the
    offline one only, forgetting it to remove it, and forgetting the online one refused
    (409); `status --forget` drops a lost worker's presence, and refuses a live one."""
    emit(cel, "worker-online", hostname="gone@host", freq=2.0)
    emit(cel, "worker-offline", hostname="gone@host", freq=2.0)
    emit(cel, "worker-heartbeat", hostname="here@host", freq=2.0)
    client = dashboard_client(cel, tmp_path)
    page = client.get("/workers").text
    assert page.count(">Forget</button>") == 1
    client.cookies.clear()  # as a script: no browser session, no CSRF token
    assert client.post("/api/worker/forget/here@host", json={}).status_code == 409
    forgotten = client.post("/api/worker/forget/gone@host", json={})
    assert forgotten.status_code == 200 and forgotten.json()["message"] == "Forgot gone@host"
    assert "gone@host" not in client.get("/workers").text
    client.cookies.clear()
    assert client.post("/api/worker/forget/gone@host", json={}).status_code == 404

    flags = cel.broker.flags
    assert flags is not None
    for name, age in (("lost@host", 60.0), ("live@host", 0.0)):
        beat = {"hostname": name, "timestamp": time.time() - age, "freq": 2.0}
        flags.set(PRESENCE_PREFIX + name, orjson.dumps(beat).decode())
    app_spec = ["-A", "tests.dashboard.test_compare:CLI_APP"]
    monkeypatch.setattr(sys.modules[__name__], "CLI_APP", cel)
    runner = CliRunner()
    refused = runner.invoke(cli, [*app_spec, "status", "--forget", "live@host"])
    assert refused.exit_code == 1 and "is online" in refused.output
    done = runner.invoke(cli, [*app_spec, "status", "--forget", "lost@host"])
    assert "forgot lost@host" in done.output and "lost@host" not in done.output.split("\n", 1)[1]


CLI_APP: Celeriac | None = None  # the app `status --forget` runs on (set by the test)


def test_an_empty_stale_queue_is_removed_from_the_page_and_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given queues that once held a message (a memory broker keeps their names), Expect
    Remove offered for an empty one only, removing it to drop it from the list, a paused
    one refused with why, and `queues remove` doing the same from the command line."""
    url = f"memory://stale-{tmp_path.name}"
    app = Celeriac("stale", broker=url, backend=url, set_as_current=False)
    try:
        for queue in ("old", "older", "busy"):
            app.send_task("proj.add", [1, 1], queue=queue)
        for queue in ("old", "older"):
            [held] = app.broker.fetch([queue], "c1", 1, 0.0)
            app.broker.ack("c1", [held.tag])
        app.control.pause("older")
        client = dashboard_client(app, tmp_path)
        page = client.get("/queues").text
        assert page.count(">Remove</button>") == 1  # old: busy holds one, older is paused
        client.cookies.clear()
        assert client.post("/api/queue/remove/busy", json={}).status_code == 409
        refused = client.post("/api/queue/remove/older", json={})
        assert refused.status_code == 409 and "resume it" in refused.json()["error"]
        assert client.post("/api/queue/remove/old", json={}).status_code == 200
        assert '/queue/old"' not in client.get("/queues").text
        app.control.resume("older")
        monkeypatch.setattr(sys.modules[__name__], "CLI_APP", app)
        spec = ["-A", "tests.dashboard.test_compare:CLI_APP"]
        done = CliRunner().invoke(cli, [*spec, "queues", "remove", "older"])
        assert done.exit_code == 0 and "removed older" in done.output
        assert app.broker.queues() == ["busy"]
    finally:
        app.close()
