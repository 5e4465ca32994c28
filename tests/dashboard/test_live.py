"""Live updates by server-sent events: coalesced under a flood of events, silent when idle."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from celeriac import Celeriac

from .conftest import Served, flood


def _updates(url: str, seconds: float, found: list[float]) -> None:
    with httpx.stream("GET", url, timeout=seconds + 10) as stream:
        for line in stream.iter_lines():
            if line == "event: update":
                found.append(time.monotonic())


def test_the_stream_sends_a_few_coalesced_updates_under_thousands_of_tasks_a_second(
    tmp_path: Path,
) -> None:
    """Given 2,000 tasks a second for 4 s, Expect at most two updates a second on /live,
    pages answering quickly meanwhile, and no update once nothing happens."""
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    app = Celeriac("live", broker=url, set_as_current=False, event_queue_maxlen=1_000_000)
    served = Served(app, tmp_path / "dash.sqlite3", live_interval=0.5)
    served.web.state.dashboard.changes.stream_seconds = 9.0
    try:
        found: list[float] = []
        reader = threading.Thread(target=_updates, args=(f"{served.url}/live", 9.0, found))
        reader.start()
        began = time.monotonic()
        sent = flood(app, seconds=4.0, tasks_per_second=2000)
        flooded = time.monotonic() - began
        answer_began = time.monotonic()
        assert httpx.get(f"{served.url}/?partial=1", timeout=10).status_code == 200
        assert time.monotonic() - answer_began < 1.0
        # The collector keeps up: everything sent is stored within a few seconds.
        store = served.web.state.dashboard.store
        deadline = time.monotonic() + 20
        count = sa.select(sa.func.count().label("n")).select_from(store.tables.tasks)
        while (stored := store.query_one(count)["n"]) < sent:
            assert time.monotonic() < deadline, f"{stored} of {sent} tasks stored"
            time.sleep(0.1)
        settled = time.monotonic()
        reader.join(20)
        assert not reader.is_alive()
        during = [t for t in found if t <= began + flooded]
        assert 2 <= len(during) <= flooded / 0.5 + 1, (len(during), flooded)
        quiet = [t for t in found if t > settled + 0.6]  # one last update may follow the flood
        assert quiet == [], "updates while nothing happened"
    finally:
        served.stop()
        app.close()


def test_a_reconnecting_page_hears_of_a_change_made_while_it_was_away(tmp_path: Path) -> None:
    """Given a browser reconnecting with Last-Event-ID older than the current version,
    Expect an update at the first look; with the current one, none."""
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    app = Celeriac("live", broker=url, set_as_current=False)
    served = Served(app, tmp_path / "dash.sqlite3", collect=False, live_interval=0.1)
    changes = served.web.state.dashboard.changes
    changes.stream_seconds = 1.0
    try:
        changes.bump()
        changes.bump()
        for last, expected in (("1", ["event: update", "data: 2"]), ("2", [])):
            lines = []
            with httpx.stream("GET", f"{served.url}/live", headers={"Last-Event-ID": last}) as s:
                lines = [line for line in s.iter_lines() if line.startswith(("event:", "data:"))]
            assert lines[:2] == ["event: hello", f"data: {last}"]
            assert lines[2:] == expected
    finally:
        served.stop()
        app.close()
