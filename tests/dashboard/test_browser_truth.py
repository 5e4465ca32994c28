"""End to end, the dashboard tells the truth: the state shown is the result backend's,
a waiting task says where and why, and every action shows the workers' own answer on a
full page (a failure as a failure). Real workers, uvicorn, headless Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx

from celeriac import Celeriac
from celeriac.events import dispatcher_for
from tests.e2e.workers import WorkerProcess, launch, wait_until

from .conftest import APP, WORKER, Served, api_tasks


def _state(base: str, task_id: str) -> str | None:
    found = [t for t in api_tasks(base, limit="1000").values() if t["uuid"] == task_id]
    return found[0]["state"] if found else None


def _shown(page: Any) -> str:
    return str(page.inner_text("#standing .state"))


def test_states_shown_are_the_backends_with_the_reason(
    cluster: tuple[Celeriac, WorkerProcess], browser: Any, tmp_path: Path
) -> None:
    """Given a task of an unknown name, one on a 600 s countdown and one on a paused queue,
    Expect the unknown one FAILURE with its dead letter linked (as the backend says), the
    delayed one waiting "delayed until ... countdown", the paused one waiting on its paused
    queue, and the delayed one REVOKED in the backend and on the page as soon as it is
    revoked from its page; only the actions that apply are offered."""
    client, _worker = cluster
    served = Served(client, tmp_path / "dash.sqlite3")
    base = served.url
    try:
        unknown = client.send_task("nobody.knows.me", [1])
        delayed = client.send_task(f"{APP}.add", [1, 2], countdown=600)
        client.control.pause("held", by="test")
        paused = client.send_task(f"{APP}.add", [2, 2], queue="held")
        wait_until(lambda: unknown.state == "FAILURE", 30, "the unknown task to fail", 0.1)
        for sent in (delayed, paused):
            wait_until(lambda s=sent: _state(base, s.id) is not None, 30, "the history", 0.1)
        page = browser.new_page()
        page.goto(f"{base}/task/{unknown.id}")
        page.wait_for_selector("#standing .state:text-is('FAILURE')", timeout=30_000)
        assert _shown(page) == unknown.state == "FAILURE"
        link = page.locator("#dead-letter a")
        assert link.inner_text() == "celeriac" and "NotRegistered" in page.inner_text("#live")
        assert page.locator("button:text('Retry (send again)')").count() == 1
        assert page.locator("button:text('Revoke')").count() == 0  # finished: nothing to stop
        wait_until(lambda: _state(base, unknown.id) == "FAILURE", 30, "the list to agree")

        page.goto(f"{base}/task/{delayed.id}")
        waiting = page.inner_text("#waiting")
        assert "delayed until" in waiting and "countdown" in waiting, waiting
        assert page.locator("button:text('Terminate')").count() == 0  # it does not run
        assert page.locator("button:text('Retry (send again)')").count() == 0
        page.goto(f"{base}/task/{paused.id}")
        assert "queue held is paused by test" in page.inner_text("#waiting")
        page.goto(f"{base}/tasks")
        listed = page.inner_text(f"table.tasks tr:has(a[href$='{delayed.id}'])")
        assert "PENDING" in listed and "runs in 10 min" in listed, listed
        retrying = client.send_task(f"{APP}.retry_later")
        wait_until(lambda: _state(base, retrying.id) == "RETRY", 30, "the retry", 0.2)
        page.goto(f"{base}/task/{retrying.id}")
        assert "because of retry 1" in page.inner_text("#waiting")
        page.goto(f"{base}/queue/celeriac?kind=delayed")
        assert "(retry 1)" in page.inner_text(f"tr[data-id='{retrying.id}']")

        page.goto(f"{base}/task/{delayed.id}")
        page.click("button:text('Revoke')")
        page.wait_for_selector(".flash:text('no worker runs it')", timeout=15_000)
        assert delayed.state == "REVOKED"  # in the backend at once, not in 600 s
        page.wait_for_selector("#standing .state:text-is('REVOKED')", timeout=15_000)
        wait_until(lambda: _state(base, delayed.id) == "REVOKED", 30, "the list to agree")
    finally:
        served.stop()


def test_actions_show_the_workers_answer_on_a_full_page(
    cluster: tuple[Celeriac, WorkerProcess], browser: Any, tmp_path: Path
) -> None:
    """When a rate limit is set for an unknown task, and a rate of 'banana' is posted, from
    the worker's page after its live part refreshed, Expect the workers' refusal on the full
    page (navigation and message, no ?partial=1), marked failed, and a 4xx for a script;
    terminate shows REVOKED (terminated), and a task sent again links to its original and
    back."""
    client, worker = cluster
    served = Served(client, tmp_path / "dash.sqlite3")
    base = served.url
    try:
        page = browser.new_page()
        page.goto(f"{base}/worker/{WORKER}")
        # evaluate, not wait_for_function: that evaluates its string in the page, which the
        # dashboard's Content-Security-Policy forbids (no 'unsafe-eval')
        live = "document.getElementById('live').dataset.updated"
        wait_until(lambda: page.evaluate(live), 15, "the live part of the worker page")
        form = page.locator("form:has(button:text('Set rate limit'))")
        form.locator("input[name=name_]").fill("no.such.task")
        form.locator("input[name=ratelimit]").fill("10/m")
        form.locator("button").click()
        page.wait_for_selector(".flash.failed", timeout=15_000)
        assert "partial" not in page.url and page.locator("header nav").count() == 1
        flash = page.inner_text(".flash")
        assert f"{WORKER} refused" in flash and "unknown task" in flash, flash
        scripted = httpx.post(
            f"{base}/api/task/rate-limit/{APP}.add", data={"ratelimit": "banana"}, timeout=10
        )
        assert scripted.status_code == 400 and "banana" in scripted.json()["error"]
        assert "not understood" in scripted.json()["error"]

        running = client.send_task(f"{APP}.sleepy", [120])
        wait_until(lambda: _state(base, running.id) == "STARTED", 30, "it to start", 0.2)
        page.goto(f"{base}/task/{running.id}")
        page.click("button:text('Terminate')")
        page.wait_for_selector(".flash:text('REVOKED (terminated)')", timeout=15_000)
        page.wait_for_selector("#standing .state:text-is('REVOKED (terminated)')", timeout=30_000)
        assert running.state == "REVOKED"
        assert "died with" not in worker.log  # a terminate is no crash (logged at INFO)

        page.click("button:text('Retry (send again)')")
        page.wait_for_selector("#sent-as a", timeout=15_000)
        copy_id = page.inner_text("#sent-as a")
        page.click("#sent-as a")
        page.wait_for_selector(f"#copy-of a:text-is('{running.id}')", timeout=15_000)
        assert copy_id in page.url
        client.control.revoke(copy_id, terminate=True)  # do not leave it running
    finally:
        served.stop()


def test_time_limit_failure_shows_on_the_worker_that_ran_it(browser: Any, tmp_path: Path) -> None:
    """Given a threads worker with a 1 s hard time limit, When a task runs past it, Expect
    FAILURE (TimeLimitExceeded) on that worker in the backend and on the dashboard, not
    REVOKED once the stopped task's message is finished off."""
    shutil.copy(Path(__file__).parents[1] / "control" / f"{APP}.py", tmp_path / f"{APP}.py")
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    env = {"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": url}
    client = Celeriac("client", broker=url, backend=url, set_as_current=False)
    worker = launch(
        APP, "-n", "limited@dash", "-P", "threads", "-c", "2", "--time-limit", "1",
        "-l", "WARNING", cwd=tmp_path, env=env,
    )  # fmt: skip
    served = Served(client, tmp_path / "dash.sqlite3")
    try:
        stopped = client.send_task(f"{APP}.sleepy", [30])
        wait_until(lambda: stopped.state == "FAILURE", 30, "the time limit", 0.1)

        def settled() -> bool:  # the stopped task's message handed back and finished off
            stats = client.broker.stats("celeriac")
            return stats.total_waiting == stats.in_flight == stats.delayed == 0

        wait_until(settled, 30, "the stopped message to be finished off", 0.1)
        after = client.send_task(f"{APP}.add", [1, 1])  # its events come after the others
        assert after.get(timeout=30) == 2
        wait_until(lambda: _state(served.url, after.id) == "SUCCESS", 30, "the history")
        page = browser.new_page()
        page.goto(f"{served.url}/task/{stopped.id}")
        assert _shown(page) == "FAILURE" == stopped.state
        assert "TimeLimitExceeded" in page.inner_text("#live")
        assert page.inner_text("#standing a") == "limited@dash"
        assert _state(served.url, stopped.id) == "FAILURE"

        # A threads pool has a fixed size: not offered, and refused with the worker's words.
        def answered() -> bool:  # the page knows the pool once the worker answered
            page.goto(f"{served.url}/worker/limited@dash")
            return "(threads)" in page.inner_text("#live")

        wait_until(answered, 30, "the worker's answer", 0.5)
        assert page.locator("button:text('Grow pool +1')").count() == 0
        grown = httpx.post(f"{served.url}/api/worker/pool/grow/limited@dash", json={"n": 1})
        assert grown.status_code == 409 and "cannot grow" in grown.json()["error"], grown.text
    finally:
        served.stop()
        worker.kill()
        dispatcher_for(client).close()
        client.close()


def test_browse_what_waits_and_run_a_delayed_task_now(
    cluster: tuple[Celeriac, WorkerProcess], browser: Any, tmp_path: Path
) -> None:
    """Given a task on a 600 s countdown and two waiting on a queue no worker consumes,
    Expect the queue pages to list them (the delayed one with its reason, the waiting ones
    in the order workers take them, and newest first), Run now to run the delayed one at
    once, and Delete to remove a waiting one."""
    client, _worker = cluster
    served = Served(client, tmp_path / "dash.sqlite3")
    base = served.url
    try:
        delayed = client.send_task(f"{APP}.add", [20, 22], countdown=600)
        low = client.send_task(f"{APP}.add", [1, 1], queue="spare", priority=1)
        high = client.send_task(f"{APP}.add", [2, 2], queue="spare", priority=8)
        page = browser.new_page()
        page.goto(f"{base}/queue/spare")
        rows = page.locator("table.messages tr[data-id]")
        assert [rows.nth(i).get_attribute("data-id") for i in range(2)] == [high.id, low.id]
        assert "2 waiting messages" in page.inner_text("#page-count")
        page.click("a:text('newest first')")
        page.wait_for_url("**newest=1**", timeout=15_000)
        assert rows.nth(0).get_attribute("data-id") == low.id
        rows.nth(0).locator("button:text('Delete')").click()
        page.wait_for_selector(".flash:text('Deleted 1 message of spare')", timeout=15_000)
        assert client.broker.stats("spare").total_waiting == 1

        page.goto(f"{base}/queue/celeriac?kind=delayed")
        row = page.locator(f"table.messages tr[data-id='{delayed.id}']")
        assert "countdown / eta" in row.inner_text()
        row.locator("button:text('Run now')").click()
        page.wait_for_selector(".flash:text('due now')", timeout=15_000)
        assert "kind=delayed" in page.url and "partial" not in page.url
        assert delayed.get(timeout=30) == 42  # not in 600 s

        api = httpx.get(f"{base}/api/queue/spare/messages", params={"kind": "soon"}, timeout=10)
        assert api.status_code == 400 and "waiting, delayed, reserved" in api.json()["error"]
    finally:
        served.stop()


def test_a_waiting_task_says_rate_limit_or_reserved_by_its_worker(
    browser: Any, tmp_path: Path
) -> None:
    """Given a threads worker of one slot with prefetch 2, and a rate limit of 1/h set on
    it, When two limited tasks are sent, and a task holds the slot while a second, taken
    in the same fetch, waits in its reserve, Expect the second's page to say "reserved by
    worker", the limited one that waits its slot to say "delayed until ... rate limit",
    and the queue's delayed list to show it with that reason."""
    shutil.copy(Path(__file__).parents[1] / "control" / f"{APP}.py", tmp_path / f"{APP}.py")
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    env = {"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": url}
    client = Celeriac("client", broker=url, backend=url, set_as_current=False)
    worker = launch(
        APP, "-n", "slow@dash", "-P", "threads", "-c", "1", "--prefetch-multiplier", "2",
        "-l", "WARNING", cwd=tmp_path, env=env,
    )  # fmt: skip
    served = Served(client, tmp_path / "dash.sqlite3")
    gate = tmp_path / "gate"
    try:
        client.control.rate_limit(f"{APP}.limits", "1/h", reply=True, timeout=5)
        first = client.send_task(f"{APP}.limits", [f"{APP}.limits"])
        assert first.get(timeout=30) == ["1/h", None, None]
        limited = client.send_task(f"{APP}.limits", [f"{APP}.limits"])
        # Both on a queue it does not consume yet: it takes them in one fetch when it does.
        holding = client.send_task(f"{APP}.hold", [str(gate)], queue="deep")
        behind = client.send_task(f"{APP}.add", [1, 2], queue="deep")
        client.control.add_consumer("deep", reply=True, timeout=5)
        wait_until(lambda: _state(served.url, holding.id) == "STARTED", 30, "the hold to start")
        page = browser.new_page()

        def shown(task_id: str) -> str:
            page.goto(f"{served.url}/task/{task_id}")
            return str(page.inner_text("#waiting")) if page.locator("#waiting").count() else ""

        wait_until(lambda: "reserved by worker slow@dash" in shown(behind.id), 30, "reserved")
        wait_until(lambda: "rate limit" in shown(limited.id), 30, "the rate limit's wait")
        assert "delayed until" in shown(limited.id)
        page.goto(f"{served.url}/queue/celeriac?kind=delayed")
        row = page.locator(f"table.messages tr[data-id='{limited.id}']")
        assert "rate limit" in row.inner_text()
        gate.touch()
        assert behind.get(timeout=30) == 3
    finally:
        gate.touch()
        served.stop()
        worker.kill()
        dispatcher_for(client).close()
        client.close()
