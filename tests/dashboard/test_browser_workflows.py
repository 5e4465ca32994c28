"""End to end, the dashboard's workflow features in a browser: bulk retry of the failures
a filter matches, and a chord member's page showing its workflow. Real worker, uvicorn,
headless Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac, chord, signature
from celeriac.events import dispatcher_for
from tests.e2e.workers import WorkerProcess, launch, wait_until

from .conftest import Served, api_tasks, shoot

APP = "workflow_app"


@pytest.fixture
def workflow_cluster(tmp_path: Path) -> Iterator[tuple[Celeriac, WorkerProcess]]:
    """A client app and one real worker of ``workflow_app`` on a SQLite broker."""
    shutil.copy(Path(__file__).with_name(f"{APP}.py"), tmp_path / f"{APP}.py")
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    env = {"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": url}
    client = Celeriac("client", broker=url, backend=url, set_as_current=False)
    worker = launch(APP, "-n", "w1@flow", "-c", "2", "-l", "WARNING", cwd=tmp_path, env=env)
    yield client, worker
    worker.kill()
    dispatcher_for(client).close()
    client.close()


def test_bulk_retry_of_the_failures_from_the_list_runs_them_again(
    workflow_cluster: tuple[Celeriac, WorkerProcess], browser: Any, tmp_path: Path
) -> None:
    """Given three tasks failed for want of a file and one success, When the file exists
    and an operator retries every FAILURE of that task from the list, confirming the count
    the page states, Expect the three to run again with their arguments and succeed."""
    client, _worker = workflow_cluster
    marker = tmp_path / "ready.flag"
    name = f"{APP}.needs_file"
    failed = [client.send_task(name, [str(marker), n]) for n in (1, 2, 3)]
    wait_until(lambda: all(r.state == "FAILURE" for r in failed), 30, "three failures")
    marker.touch()
    assert client.send_task(name, [str(marker), 4]).get(timeout=30) == 4
    served = Served(client, tmp_path / "dash.sqlite3")
    base = served.url
    try:
        wait_until(
            lambda: len(api_tasks(base, state="FAILURE", taskname=name)) == 3, 30, "the history"
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/tasks?state=FAILURE&name={name}")
        page.click("form.bulk button:text('Retry all')")
        page.wait_for_selector("#bulk-count:text-is('3')", timeout=15_000)
        assert "FAILURE" in page.inner_text("table.bulk-filter")
        shoot(page, "bulk", tmp_path)
        page.click("button:text('Retry (send again) 3 tasks')")
        page.wait_for_selector(".flash:text('Sent again 3 tasks')", timeout=15_000)
        assert f"state=FAILURE&name={name}" in page.url  # back on the filtered list
        wait_until(
            lambda: len(api_tasks(base, state="SUCCESS", taskname=name)) == 4,
            30,
            "the three retried tasks to succeed",
        )
        results = sorted(
            t["result"] for t in api_tasks(base, state="SUCCESS", taskname=name).values()
        )
        assert results == [1, 2, 3, 4]
        assert len(api_tasks(base, state="FAILURE", taskname=name)) == 3  # history kept
    finally:
        served.stop()


def test_a_chord_members_page_shows_the_workflow(
    workflow_cluster: tuple[Celeriac, WorkerProcess], browser: Any, tmp_path: Path
) -> None:
    """Given a chord of three adds and a sum, Expect a member's page to show the three
    members as a group with their states, the callback among them, and links that lead to
    each task's page."""
    client, _worker = workflow_cluster
    header = [signature(f"{APP}.add", (i, i), app=client) for i in range(3)]
    result = chord(header, signature(f"{APP}.tsum", app=client), app=client).apply_async()
    assert result.get(timeout=30) == 6
    served = Served(client, tmp_path / "dash.sqlite3")
    base = served.url
    try:
        wait_until(
            lambda: len(api_tasks(base, state="SUCCESS")) == 4, 30, "the chord in the history"
        )
        members = [t for t in api_tasks(base, taskname=f"{APP}.add").values()]
        member = next(t for t in members if t["root_id"] != t["uuid"])  # not the first
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/task/{member['uuid']}")
        tree = page.locator("ul.tree")
        tree.wait_for(timeout=15_000)
        assert tree.locator("li.group").count() == 1
        assert "3 tasks" in tree.locator("li.group > span").inner_text()
        assert tree.locator("li[data-task] .state.success").count() == 4
        assert tree.locator("li.here").get_attribute("data-task") == member["uuid"]
        callback = tree.locator(f"li[data-task='{result.id}']")
        assert f"{APP}.tsum" in callback.inner_text()
        if os.environ.get("DASHBOARD_SCREENSHOTS"):
            shoot(page, "workflow", tmp_path)
        callback.locator("a").first.click()
        page.wait_for_url(f"{base}/task/{result.id}", timeout=15_000)
        assert page.locator("li.here").get_attribute("data-task") == result.id
        assert "6" in page.inner_text("#live")
    finally:
        served.stop()
