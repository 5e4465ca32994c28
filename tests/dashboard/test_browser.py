"""End to end: real workers, the dashboard served by uvicorn, a headless Chromium.

Screenshots of each page (DASHBOARD_SCREENSHOTS=1: into docs/img/) are for a person to look at."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from celeriac import Celeriac
from celeriac.control.pause import REFRESH
from celeriac.dashboard import create_app
from celeriac.events import dispatcher_for
from tests.e2e.workers import WorkerProcess, launch, wait_until

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots go to docs/img/ only when asked (DASHBOARD_SCREENSHOTS=1), not on every run.
DOCS_IMG = Path(__file__).parents[2] / "docs" / "img"
APP = "e2e_app"


class Served:
    """The dashboard under uvicorn in a thread, on a free port."""

    def __init__(self, app: Celeriac, db: Path, **options: Any) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.web = create_app(app, store=db, **options)
        config = uvicorn.Config(self.web, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, 20, "the dashboard to start")
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.web.state.dashboard.store.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing and CI is set (scripts/setup installs it)")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Celeriac, WorkerProcess]]:
    shutil.copy(Path(__file__).parents[1] / "control" / f"{APP}.py", tmp_path / f"{APP}.py")
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    env = {"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": url}
    client = Celeriac("client", broker=url, backend=url, set_as_current=False)
    worker = launch(APP, "-n", "w1@dash", "-c", "2", "-l", "WARNING", cwd=tmp_path, env=env)
    yield client, worker
    worker.kill()
    dispatcher_for(client).close()
    client.close()


def _tasks(base: str, **params: str) -> dict[str, Any]:
    return httpx.get(f"{base}/api/tasks", params=params, timeout=5).json()  # type: ignore[no-any-return]


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
        wait_until(lambda: _tasks(base, state="FAILURE"), 30, "the failure in the history")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        shots = DOCS_IMG if os.environ.get("DASHBOARD_SCREENSHOTS") else tmp_path
        shots.mkdir(parents=True, exist_ok=True)
        # Overview and workers show live data
        page.goto(f"{base}/")
        page.wait_for_selector("#workers-online:text('1')", timeout=15_000)
        page.screenshot(path=str(shots / "dashboard-overview.png"), full_page=True)
        page.goto(f"{base}/workers")
        page.wait_for_selector("text=w1@dash", timeout=15_000)
        page.screenshot(path=str(shots / "dashboard-workers.png"), full_page=True)
        page.goto(f"{base}/tasks")
        page.wait_for_selector(f"table.tasks >> text={APP}.boom", timeout=15_000)
        page.screenshot(path=str(shots / "dashboard-tasks.png"), full_page=True)
        # A task's page shows its timeline; Retry runs it again
        page.goto(f"{base}/task/{failed.id}")
        page.wait_for_selector(".timeline >> text=task-failed", timeout=15_000)
        assert "ValueError" in page.inner_text("#live")
        page.screenshot(path=str(shots / "dashboard-task.png"), full_page=True)
        page.click("button:text('Retry (send again)')")
        page.wait_for_load_state()
        assert "Sent again as" in page.content(), page.content()[:600]
        wait_until(
            lambda: len(_tasks(base, state="FAILURE", taskname=f"{APP}.boom")) == 2,
            30,
            "the retried task to run and fail again",
        )
        # Pausing the queue from the UI stops its consumption; resuming restarts it
        page.goto(f"{base}/queues")
        page.click("tr:has-text('celeriac') >> button:text('Pause')")
        page.wait_for_selector(".flash:text('Paused celeriac')", timeout=15_000)
        wait_until(lambda: "celeriac" in client.control.paused(), 5, "the pause flag")
        time.sleep(REFRESH + 0.5)  # consumers re-read pause flags every REFRESH s (documented)
        held = client.send_task(f"{APP}.add", [4, 4])
        with pytest.raises(AssertionError):  # still waiting 3 s later (workers re-read at 1 s)
            wait_until(lambda: held.ready(), 3, "nothing: the queue is paused")
        page.goto(f"{base}/queues")
        page.screenshot(path=str(shots / "dashboard-queues.png"), full_page=True)
        page.click("tr:has-text('celeriac') >> button:text('Resume')")
        assert held.get(timeout=30) == 8
    finally:
        served.stop()
    # A restarted dashboard (and collector) still has the history
    again = Served(client, db)
    try:
        assert len(_tasks(again.url, state="FAILURE")) == 2
        assert _tasks(again.url, taskname=f"{APP}.add")
    finally:
        again.stop()
