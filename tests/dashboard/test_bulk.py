"""Bulk actions on every task a filter matches: counted first, done in batches, capped."""

from __future__ import annotations

import html as html_text
import re
import time
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.dashboard import bulk
from celeriac.dashboard.bulk import BULK_LIMIT
from celeriac.dashboard.queries import TaskFilter, count_tasks, task_batches
from celeriac.dashboard.store import Store
from celeriac.events.event import Event
from celeriac.message import decode

from .helpers import dashboard_client, lifecycle


def _store_with(path: Path, failed: int, succeeded: int, at: float) -> Store:
    store = Store(path / "dash.sqlite3")
    events = [
        Event.from_dict(
            {"type": "task-failed" if i < failed else "task-succeeded", "uuid": f"t-{i:05d}",
             "name": "proj.add", "args": [i], "kwargs": {}, "queue": "celeriac",
             "timestamp": at + (i % 7), "hostname": "w1"}
        )
        for i in range(failed + succeeded)
    ]  # fmt: skip
    store.apply(events)
    return store


def test_batches_cover_every_match_once_newest_first_within_the_snapshot(tmp_path: Path) -> None:
    """Given 2,500 failures (many sharing a timestamp) and 100 successes, Expect batches of
    at most 1,000 that list each failure once, and nothing first seen after the snapshot."""
    at = time.time() - 100
    store = _store_with(tmp_path, failed=2500, succeeded=100, at=at)
    failures = TaskFilter(state="FAILURE")
    assert count_tasks(store, failures, at + 10) == 2500
    assert count_tasks(store, failures, at + 2) == len([i for i in range(2500) if i % 7 <= 2])
    batches = list(task_batches(store, failures, at + 10, size=1000))
    assert [len(b) for b in batches] == [1000, 1000, 500]
    ids = [task["id"] for batch in batches for task in batch]
    assert len(set(ids)) == 2500 and all(int(i[2:]) < 2500 for i in ids)
    seen = [task["seen"] for batch in batches for task in batch]
    assert seen == sorted(seen, reverse=True)
    assert batches[0][0]["args"] == [int(batches[0][0]["id"][2:])]
    early = [t["id"] for b in task_batches(store, failures, at + 2, size=300) for t in b]
    assert len(early) == count_tasks(store, failures, at + 2)
    assert count_tasks(store, TaskFilter(state="FAILURE", search="t-00012"), at + 10) == 1
    store.close()


# -- the API --------------------------------------------------------------------------
def _failures(cel: Celeriac, count: int, name: str = "proj.fail") -> list[str]:
    ids = [f"{name}-{i}" for i in range(count)]
    for i, task_id in enumerate(ids):
        lifecycle(cel, task_id, name=name, outcome="task-failed", args=[i], at=time.time() - 60)
    return ids


def _waiting(cel: Celeriac, queue: str = "celeriac") -> list[Any]:
    deliveries = cel.broker.fetch([queue], "test", 10_000, 0.0)
    return [decode(d.body, cel.codec, d) for d in deliveries]


def test_a_dry_run_counts_then_retry_sends_every_match_again(cel: Celeriac, tmp_path: Path) -> None:
    """Given 5 failures of proj.fail and other tasks, When a script counts the failures of
    proj.fail and confirms that count, Expect each sent again once with its arguments."""
    ids = _failures(cel, 5)
    _failures(cel, 2, name="proj.other")
    lifecycle(cel, "ok-1", name="proj.fail")
    client = dashboard_client(cel, tmp_path)
    flt = {"state": "FAILURE", "name": "proj.fail"}
    counted = client.get("/api/tasks/bulk/retry", params=flt).json()
    assert counted["count"] == 5 and counted["limit"] == BULK_LIMIT
    assert counted["filter"] == flt
    posted = client.post("/api/tasks/bulk/retry", json={**flt, "dry_run": True}).json()
    assert posted["count"] == 5
    assert _waiting(cel) == []  # counting sent nothing
    done = client.post(
        "/api/tasks/bulk/retry", json={**flt, "expected": 5, "snapshot": counted["snapshot"]}
    )
    assert done.status_code == 200, done.text
    assert done.json()["count"] == 5 and done.json()["skipped"] == 0
    sent = _waiting(cel)
    assert sorted((m.task, list(m.args)) for m in sent) == [("proj.fail", [i]) for i in range(5)]
    assert not {m.id for m in sent} & set(ids)  # new tasks, not the old ids


def test_an_action_needs_the_confirmed_count_and_refuses_more(
    cel: Celeriac, tmp_path: Path
) -> None:
    ids = _failures(cel, 3)
    client = dashboard_client(cel, tmp_path)
    flt = {"state": "FAILURE"}
    missing = client.post("/api/tasks/bulk/revoke", json=flt)
    assert missing.status_code == 400 and "expected" in missing.json()["error"]
    more = client.post("/api/tasks/bulk/revoke", json={**flt, "expected": 2})
    assert more.status_code == 409 and "3 tasks" in more.json()["error"]
    assert cel.broker.revocations.revoked(ids) == set()
    unknown = client.post("/api/tasks/bulk/explode", json={**flt, "expected": 3})
    assert unknown.status_code == 404 and "revoke, terminate, retry" in unknown.json()["error"]
    bad = client.post("/api/tasks/bulk/revoke", json={**flt, "expected": "many"})
    assert bad.status_code == 400 and "expected must be a number" in bad.json()["error"]
    read_only = dashboard_client(cel, tmp_path, read_only=True)
    assert read_only.post("/api/tasks/bulk/revoke", json={**flt, "expected": 3}).status_code == 403
    assert read_only.get("/api/tasks/bulk/revoke", params=flt).json()["count"] == 3
    assert cel.broker.revocations.revoked(ids) == set()


def test_revoke_is_one_broker_call_per_batch_and_skips_later_tasks(
    cel: Celeriac, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given 5 failures counted, then 2 more failing after the count, When the 5 are
    revoked with batches of 2, Expect 3 broker calls and the later 2 untouched."""
    monkeypatch.setattr(bulk, "BATCH_SIZE", 2)
    ids = _failures(cel, 5)
    client = dashboard_client(cel, tmp_path)
    counted = client.get("/api/tasks/bulk/terminate", params={"state": "FAILURE"}).json()
    for i in range(2):
        lifecycle(cel, f"late-{i}", outcome="task-failed", at=time.time() + 1)
    client.app.state.dashboard.collector.drain()
    calls: list[list[str]] = []
    # each thread has its own connection: patch the revocations of them all
    revocations_class = type(cel.broker.revocations)
    revoke = revocations_class.revoke

    def counted_revoke(self: Any, task_ids: list[str], ttl: float) -> None:
        calls.append(list(task_ids))
        revoke(self, task_ids, ttl)

    monkeypatch.setattr(revocations_class, "revoke", counted_revoke)
    done = client.post(
        "/api/tasks/bulk/terminate",
        data={"state": "FAILURE", "expected": "5", "snapshot": str(counted["snapshot"])},
    ).json()
    assert done["count"] == 5 and done["message"] == "Revoked and terminated 5 tasks"
    assert [len(c) for c in calls] == [2, 2, 1]
    assert cel.broker.revocations.revoked([*ids, "late-0", "late-1"]) == set(ids)


def test_more_matches_than_the_limit_are_refused(
    cel: Celeriac, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "BULK_LIMIT", 2)
    ids = _failures(cel, 3)
    client = dashboard_client(cel, tmp_path)
    assert client.get("/api/tasks/bulk/revoke").json()["over_limit"] is True
    refused = client.post("/api/tasks/bulk/revoke", json={"expected": 3})
    assert refused.status_code == 400 and "narrow it" in refused.json()["error"]
    assert cel.broker.revocations.revoked(ids) == set()


# -- the pages ------------------------------------------------------------------------
def test_the_list_offers_bulk_actions_behind_a_confirmation_with_the_count(
    cel: Celeriac, tmp_path: Path
) -> None:
    """Given 3 failures of proj.fail, When an operator asks to revoke the filtered list,
    Expect a page stating the count and the filter, whose POST (with CSRF) revokes the 3
    and returns to the filtered list."""
    ids = _failures(cel, 3)
    lifecycle(cel, "ok-1", name="proj.fail")
    client = dashboard_client(cel, tmp_path)
    listed = client.get("/tasks", params={"state": "FAILURE", "name": "proj.fail"})
    assert 'action="/tasks/bulk"' in listed.text
    assert '<input type="hidden" name="state" value="FAILURE">' in listed.text
    page = client.get(
        "/tasks/bulk", params={"state": "FAILURE", "name": "proj.fail", "action": "revoke"}
    )
    assert page.status_code == 200
    assert '<b id="bulk-count">3</b> tasks match' in page.text
    assert '<td>state</td><td class="code">FAILURE</td>' in page.text
    assert '<input type="hidden" name="expected" value="3">' in page.text
    assert 'id="live"' not in page.text  # counted once, not refreshed every second
    form = _hidden_fields(page.text)
    assert form["next"] == "/tasks?state=FAILURE&name=proj.fail"
    forged = client.post("/api/tasks/bulk/revoke", data={**form, "csrf_token": "wrong"})
    assert forged.status_code == 403 and cel.broker.revocations.revoked(ids) == set()
    done = client.post("/api/tasks/bulk/revoke", data=form, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == ("/tasks?state=FAILURE&name=proj.fail&msg=Revoked+3+tasks")
    assert cel.broker.revocations.revoked([*ids, "ok-1"]) == set(ids)
    assert client.get("/tasks/bulk", params={"action": "explode"}).status_code == 404
    nothing = client.get("/tasks/bulk", params={"action": "retry", "state": "STARTED"})
    assert "Nothing to do" in nothing.text and '<form method="post"' not in nothing.text
    read_only = dashboard_client(cel, tmp_path, read_only=True)
    assert 'action="/tasks/bulk"' not in read_only.get("/tasks").text
    offered = read_only.get("/tasks/bulk", params={"action": "revoke"}).text
    assert "read-only" in offered and '<form method="post"' not in offered


def _hidden_fields(html: str) -> dict[str, str]:
    form = html[html.index('<form method="post"') :]
    form = form[: form.index("</form>")]
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form)
    return {name: html_text.unescape(value) for name, value in found}


def test_the_time_range_bounds_the_action_and_cut_arguments_are_skipped(
    cel: Celeriac, tmp_path: Path
) -> None:
    """Given failures in the last hour (one whose arguments were cut in its events) and
    one two hours ago, When every failure since an hour ago is retried, Expect the recent
    ones with whole arguments sent again, the cut one skipped and counted, the old one not
    touched."""
    _failures(cel, 2)
    lifecycle(cel, "cut-1", name="proj.fail", outcome="task-failed", args="[1, 2, 3...")
    lifecycle(cel, "old-1", name="proj.fail", outcome="task-failed", at=time.time() - 7200)
    client = dashboard_client(cel, tmp_path)
    counted = client.get("/api/tasks/bulk/retry", params={"state": "FAILURE", "since": "1h"})
    assert counted.json()["count"] == 3
    assert counted.json()["filter"]["since"].endswith("+00:00")
    done = client.post(
        "/api/tasks/bulk/retry", json={"state": "FAILURE", "since": "1h", "expected": 3}
    ).json()
    assert (done["count"], done["skipped"]) == (2, 1)
    assert "1 skipped" in done["message"]
    assert sorted(list(m.args) for m in _waiting(cel)) == [[0], [1]]
