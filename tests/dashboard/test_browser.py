"""End to end: real workers, the dashboard served by uvicorn, a headless Chromium.

Screenshots of each page (DASHBOARD_SCREENSHOTS=1: into docs/img/) are for a person to look at."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from celeriac import Celeriac
from celeriac.result import AsyncResult
from tests.e2e.workers import WorkerProcess, wait_until

from .conftest import APP, Served, api_tasks, shoot


def test_live_pages_retry_pause_and_restart(
    cluster: tuple[Celeriac, WorkerProcess], browser: Any, tmp_path: Path
) -> None:
    client, _worker = cluster
    db = tmp_path / "dash.sqlite3"
    served = Served(client, db)
    base = served.url
    try:
        client.send_task(f"{APP}.add", [2, 3]).get(timeout=30)
        failed = client.send_task(f"{APP}.boom")
        wait_until(lambda: api_tasks(base, state="FAILURE"), 30, "the failure in the history")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        # Overview and workers show live data
        page.goto(f"{base}/")
        page.wait_for_selector("#workers-online:text('1')", timeout=15_000)
        shoot(page, "overview", tmp_path)
        page.goto(f"{base}/workers")
        page.wait_for_selector("text=w1@dash", timeout=15_000)
        shoot(page, "workers", tmp_path)
        page.goto(f"{base}/tasks")
        page.wait_for_selector(f"table.tasks >> text={APP}.boom", timeout=15_000)
        shoot(page, "tasks", tmp_path)
        # A task's page shows its timeline; Retry runs it again
        page.goto(f"{base}/task/{failed.id}")
        page.wait_for_selector(".timeline >> text=task-failed", timeout=15_000)
        assert "ValueError" in page.inner_text("#live")
        shoot(page, "task", tmp_path)
        page.click("button:text('Retry (send again)')")
        page.wait_for_load_state()
        assert "Sent again as" in page.content(), page.content()[:600]
        wait_until(
            lambda: len(api_tasks(base, state="FAILURE", taskname=f"{APP}.boom")) == 2,
            30,
            "the retried task to run and fail again",
        )
        # Pausing the queue from the UI stops its consumption; resuming restarts it
        page.goto(f"{base}/queues")
        page.click("tr:has-text('celeriac') >> button:text('Pause')")
        page.wait_for_selector(".flash:text('Paused celeriac')", timeout=15_000)
        wait_until(lambda: "celeriac" in client.control.paused(), 5, "the pause flag")
        # Consumers re-read pause flags about once a second: a task sent before they did
        # may still run. Poll until one sent now stays waiting while the worker is idle.
        held: list[AsyncResult[Any]] = []
        wait_until(lambda: _stays_waiting(client, held), 30, "a task on the paused queue to wait")
        page.goto(f"{base}/queues")
        shoot(page, "queues", tmp_path)
        page.click("tr:has-text('celeriac') >> button:text('Resume')")
        assert [r.get(timeout=30) for r in held] == [8] * len(held)
    finally:
        served.stop()
    # A restarted dashboard (and collector) still has the history
    again = Served(client, db)
    try:
        assert len(api_tasks(again.url, state="FAILURE")) == 2
        assert api_tasks(again.url, taskname=f"{APP}.add")
    finally:
        again.stop()


def _stays_waiting(client: Celeriac, sent: list[AsyncResult[Any]], seconds: float = 3.0) -> bool:
    """Send ``add(4, 4)``; True when it is still waiting ``seconds`` later (several fetches)."""
    probe = client.send_task(f"{APP}.add", [4, 4])
    sent.append(probe)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if probe.ready():
            return False
        time.sleep(0.1)
    return client.broker.stats("celeriac").total_waiting >= 1
