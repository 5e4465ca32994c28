"""Fixtures of the end-to-end tests: a real worker, the dashboard under uvicorn, Chromium."""

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
from celeriac.dashboard import create_app
from celeriac.events import EVENTS_STREAM, dispatcher_for, encode_event
from tests.e2e.workers import WorkerProcess, launch, wait_until
from tests.needs import missing

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
APP = "e2e_app"
# Screenshots go to docs/img/ only when asked (DASHBOARD_SCREENSHOTS=1), not on every run.
DOCS_IMG = Path(__file__).parents[2] / "docs" / "img"
WORKER = "w1@dash"


class Served:
    """The dashboard under uvicorn in a thread, on a free port."""

    def __init__(self, app: Celeriac, db: Path, **options: Any) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.web = create_app(app, store=db, **options)
        config = uvicorn.Config(
            self.web,
            host="127.0.0.1",
            port=self.port,
            log_level="error",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, 20, "the dashboard to start")
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.web.state.dashboard.changes.close()  # open live streams end now
        self.server.should_exit = True
        self.thread.join(20)
        self.web.state.dashboard.store.close()


def shoot(page: Any, name: str, tmp_path: Path) -> None:
    """A full-page screenshot ``dashboard-<name>.png``: into docs/img/ when asked."""
    folder = DOCS_IMG if os.environ.get("DASHBOARD_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"dashboard-{name}.png"), full_page=True)


def api_tasks(base: str, auth: tuple[str, str] | None = None, **params: str) -> dict[str, Any]:
    """``GET /api/tasks`` of the dashboard at ``base``."""
    reply = httpx.get(f"{base}/api/tasks", params=params, auth=auth, timeout=5)
    return reply.json()  # type: ignore[no-any-return]


def flood(app: Celeriac, seconds: float, tasks_per_second: int, prefix: str = "flood") -> int:
    """Task events (received, started, succeeded) written straight to the event stream at
    ``tasks_per_second`` for ``seconds``, in batches of a tenth of a second; tasks sent."""
    sent, began = 0, time.monotonic()
    while (elapsed := time.monotonic() - began) < seconds:
        due = int(elapsed * tasks_per_second) + tasks_per_second // 10
        now = time.time()
        items = [
            encode_event(
                {"type": kind, "uuid": f"{prefix}-{i}", "name": "proj.flood", "hostname": "w9",
                 "timestamp": now, "result": i, "runtime": 0.001},
                10_000,
            )
            for i in range(sent, due)
            for kind in ("task-received", "task-started", "task-succeeded")
        ]  # fmt: skip
        if items:
            app.broker.streams.add(EVENTS_STREAM, items, maxlen=1_000_000)
        sent = due
        time.sleep(max(0.0, began + elapsed + 0.1 - time.monotonic()))  # pace: 10 batches/s
    return sent


@pytest.fixture
def cel(tmp_path: Path) -> Iterator[Celeriac]:
    """An app on a SQLite broker and backend of the test's own, sending no task-sent events."""
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    app = Celeriac("t", broker=url, backend=url, set_as_current=False, task_send_sent_event=False)
    yield app
    app.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        missing(f"{CHROMIUM} is missing (scripts/setup installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Celeriac, WorkerProcess]]:
    """A client app and one real prefork worker (two processes) on a SQLite broker."""
    shutil.copy(Path(__file__).parents[1] / "control" / f"{APP}.py", tmp_path / f"{APP}.py")
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    env = {"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": url}
    client = Celeriac("client", broker=url, backend=url, set_as_current=False)
    worker = launch(APP, "-n", WORKER, "-c", "2", "-l", "WARNING", cwd=tmp_path, env=env)
    yield client, worker
    worker.kill()
    dispatcher_for(client).close()
    client.close()
