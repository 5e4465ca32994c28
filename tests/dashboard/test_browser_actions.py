"""End to end, the dashboard's actions from a browser: who may act, revoke and terminate,
requeue a dead letter, grow and shrink the pool. Real worker, uvicorn, headless Chromium."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError

from celeriac import Celeriac
from tests.e2e.workers import WorkerProcess, wait_until

from .conftest import APP, WORKER, Served, api_tasks, shoot

USER = ("ops", "s3cret-pw")


def _state(base: str, task_id: str, auth: tuple[str, str] | None = None) -> str | None:
    found = [t for t in api_tasks(base, auth, limit="1000").values() if t["uuid"] == task_id]
    return found[0]["state"] if found else None


def test_an_anonymous_visitor_cannot_act_and_a_forged_post_is_refused(
    cluster: tuple[Celeriac, WorkerProcess], browser: Any, tmp_path: Path
) -> None:
    """Given basic auth on, Expect no page and no action for an anonymous visitor, and a
    POST forged by another site (the user's browser holds the credentials) refused."""
    client, _worker = cluster
    served = Served(client, tmp_path / "dash.sqlite3", basic_auth=USER)
    base = served.url
    try:
        done = client.send_task(f"{APP}.add", [1, 1])
        assert done.get(timeout=30) == 2
        wait_until(lambda: _state(base, done.id, USER) == "SUCCESS", 30, "the task's history")
        anonymous = browser.new_context()
        page = anonymous.new_page()
        with pytest.raises(PlaywrightError, match="AUTH"):  # the browser shows no page
            page.goto(f"{base}/task/{done.id}")
        shown = anonymous.request.get(f"{base}/task/{done.id}")
        assert shown.status == 401
        assert "<form" not in shown.text() and "Retry" not in shown.text()  # no action offered
        refused = anonymous.request.post(f"{base}/api/task/retry/{done.id}")
        assert refused.status == 401
        # A signed-in operator visits another site, whose page posts to the dashboard.
        header = "Basic " + base64.b64encode(":".join(USER).encode()).decode()
        operator = browser.new_context(extra_http_headers={"Authorization": header})
        page = operator.new_page()
        page.goto(f"{base}/task/{done.id}")
        assert page.locator("button:text('Retry (send again)')").count() == 1
        evil = Served(client, tmp_path / "other.sqlite3", collect=False)
        try:
            page.goto(f"{evil.url}/healthcheck")  # another origin
            page.set_content(
                f'<form method="post" action="{base}/api/task/retry/{done.id}">'
                '<input name="next" value="/"><button>go</button></form>'
            )
            with page.expect_response(f"{base}/api/task/retry/{done.id}") as forged:
                page.click("button")
            assert forged.value.status == 403
            assert "CSRF" in forged.value.text()
        finally:
            evil.stop()
        assert len(api_tasks(base, USER, taskname=f"{APP}.add")) == 1  # nothing was sent again
    finally:
        served.stop()


def test_revoke_a_waiting_task_and_terminate_a_running_one_from_the_ui(
    cluster: tuple[Celeriac, WorkerProcess], browser: Any, tmp_path: Path
) -> None:
    """Given a task running and one waiting on a queue no worker consumes yet, When the
    running one is terminated and the waiting one revoked from their pages, Expect the
    running one to stop at once (REVOKED, long before its 120 s) and the waiting one to be
    skipped once a worker consumes its queue, while a later task there runs."""
    client, _worker = cluster
    served = Served(client, tmp_path / "dash.sqlite3")
    base = served.url
    try:
        running = client.send_task(f"{APP}.sleepy", [120])
        waiting = client.send_task(f"{APP}.add", [5, 5], queue="spare")
        wait_until(lambda: _state(base, running.id) == "STARTED", 30, "it to start", 0.2)
        wait_until(lambda: _state(base, waiting.id) is not None, 30, "the waiting row", 0.2)
        page = browser.new_page()
        page.goto(f"{base}/task/{waiting.id}")
        page.click("button:text('Revoke')")
        page.wait_for_selector(f".flash:text('Revoked \\'{waiting.id}\\'')", timeout=15_000)
        page.goto(f"{base}/task/{running.id}")
        page.click("button:text('Terminate')")
        page.wait_for_selector(".flash:text('terminated')", timeout=15_000)
        page.wait_for_selector("#live .state.revoked", timeout=30_000)  # the live part follows
        wait_until(lambda: running.state == "REVOKED", 30, "REVOKED in the results", 0.2)
        client.control.add_consumer("spare", reply=True, timeout=5)
        after = client.send_task(f"{APP}.add", [6, 6], queue="spare")
        assert after.get(timeout=30) == 12
        wait_until(lambda: waiting.state == "REVOKED", 30, "the revoked task to be skipped", 0.2)
    finally:
        served.stop()


def test_a_dead_letter_requeued_from_the_ui_runs(
    cluster: tuple[Celeriac, WorkerProcess], browser: Any, tmp_path: Path
) -> None:
    """Given a dead letter on a queue, When requeued from the queue's page and the worker
    is told (from its page) to consume that queue, Expect the task to run."""
    client, _worker = cluster
    served = Served(client, tmp_path / "dash.sqlite3")
    base = served.url
    try:
        result = client.send_task(f"{APP}.add", [3, 4], queue="spare")
        (held,) = client.broker.fetch(["spare"], "test", 1, 5)
        client.broker.dead_letter("test", held.tag, "dead on purpose")
        page = browser.new_page()
        page.goto(f"{base}/queue/spare")
        row = page.locator(f"tr:has-text('{held.id}')")
        assert "dead on purpose" in row.inner_text()
        shoot(page, "queue", tmp_path)
        row.locator("button:text('Requeue')").click()
        page.wait_for_selector(".flash:text('Requeued 1')", timeout=15_000)
        assert client.broker.stats("spare").total_waiting == 1
        page.goto(f"{base}/worker/{WORKER}")
        page.fill("form:has(button:text('Add consumer')) input[name=queue]", "spare")
        page.click("button:text('Add consumer')")
        page.wait_for_selector(".flash", timeout=15_000)
        assert result.get(timeout=30) == 7
    finally:
        served.stop()


def test_pool_grow_and_shrink_from_the_worker_page(
    cluster: tuple[Celeriac, WorkerProcess], browser: Any, tmp_path: Path
) -> None:
    """When the pool is grown then shrunk from the worker's page, Expect the number of
    processes the page reports (and the worker's children) to follow: 2, 3, 2."""
    client, worker = cluster
    served = Served(client, tmp_path / "dash.sqlite3")
    base = served.url
    try:
        page = browser.new_page()
        page.goto(f"{base}/worker/{WORKER}")
        page.wait_for_selector("#processes:text-is('2')", timeout=30_000)
        page.click("button:text('Grow pool +1')")
        page.wait_for_selector("#processes:text-is('3')", timeout=30_000)
        wait_until(lambda: len(worker.children()) == 3, 30, "a third process")
        page.click("button:text('Shrink pool')")
        page.wait_for_selector("#processes:text-is('2')", timeout=30_000)
        wait_until(lambda: len(worker.children()) == 2, 30, "back to two processes")
        # Limits set from the page show on the registered tasks (from the worker's answer).
        form = page.locator("form:has(button:text('Set rate limit'))")
        form.locator("input[name=name_]").fill(f"{APP}.add")
        form.locator("input[name=ratelimit]").fill("10/m")
        form.locator("button").click()
        page.wait_for_selector(".flash:text('10/m')", timeout=15_000)
        form = page.locator("form:has(button:text('Set time limits'))")
        form.locator("input[name=name_]").fill(f"{APP}.sleepy")
        form.locator("input[name=soft]").fill("5")
        form.locator("input[name=hard]").fill("10")
        form.locator("button").click()
        page.wait_for_selector(".flash:text('time limits')", timeout=15_000)
        page.wait_for_selector(
            f"table.registered tr:has(td:text-is('{APP}.add')) >> td:text-is('10/m')",
            timeout=30_000,
        )
        page.wait_for_selector(
            f"table.registered tr:has(td:text-is('{APP}.sleepy')) >> td:text-is('10.0')",
            timeout=30_000,
        )
        page.click("details.conf summary")  # the configuration, secrets hidden
        assert "broker_url" in page.inner_text("details.conf")
        shoot(page, "worker", tmp_path)
    finally:
        served.stop()
