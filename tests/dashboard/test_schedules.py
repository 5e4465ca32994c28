"""The schedules page and API: entries, next runs, the last run's outcome, pause/resume/run."""

from __future__ import annotations

import time
from pathlib import Path

from celeriac import Celeriac
from celeriac.beat import run_id
from celeriac.brokers.capabilities import BeatRun

from .helpers import dashboard_client, lifecycle


def test_entries_with_last_outcome_and_actions(cel: Celeriac, tmp_path: Path) -> None:
    # Given two entries, one of which ran (recorded in the broker, its task failed)
    cel.conf.beat_schedule = {
        "every-minute": {"task": "proj.tick", "schedule": 60.0},
        "hourly": {"task": "proj.hourly", "schedule": 3600.0, "catch_up": "skip"},
    }
    due_ms = (int(time.time()) // 60) * 60_000
    beat = cel.broker.beat
    assert beat is not None and beat.hold("beat-1@host:abcd", 30).holder == "beat-1@host:abcd"
    assert beat.record([BeatRun("every-minute", due_ms, None)]) == [True]
    lifecycle(cel, run_id("every-minute", due_ms), name="proj.tick", outcome="task-failed")
    client = dashboard_client(cel, tmp_path)
    # Expect the API to list both, the leader, and the last run's outcome
    listed = client.get("/api/schedules").json()
    assert listed["leader"] == "beat-1@host"
    rows = {row["name"]: row for row in listed["entries"]}
    assert rows["every-minute"]["last_outcome"] == "FAILURE"
    assert rows["every-minute"]["last_run"] == due_ms / 1000
    assert rows["every-minute"]["next_run"] > time.time() - 1
    assert rows["hourly"]["last_outcome"] is None and rows["hourly"]["catch_up"] == "skip"
    page = client.get("/schedules").text
    assert "Beat leader: beat-1@host" in page and "every-minute" in page and "FAILURE" in page
    # pause, resume and run through the API (a script's calls: no page cookie, no form token)
    client.cookies.clear()
    assert client.post("/api/schedule/pause/hourly").status_code == 200
    rows = {row["name"]: row for row in client.get("/api/schedules").json()["entries"]}
    assert rows["hourly"]["paused"] is True and rows["hourly"]["next_run"] is None
    assert "Resume" in client.get("/schedules").text
    client.cookies.clear()
    assert client.post("/api/schedule/resume/hourly").status_code == 200
    sent = client.post("/api/schedule/run/hourly").json()
    [delivery] = cel.broker.fetch(["celeriac"], "t", 10, 0.5)
    assert delivery.id == sent["task-id"]
    missing = client.post("/api/schedule/pause/nope")
    assert missing.status_code == 404 and "no periodic task named 'nope'" in missing.json()["error"]
