"""The queue page on RabbitMQ, in Chromium, with ``celeriac dashboard`` and a worker as
real processes: delayed messages listed and run now, waiting ones listed and deleted,
reserved ones listed from the worker's own answer and requeued."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path
from typing import Any

from celeriac import Celeriac
from tests.e2e.workers import CELERIAC, WorkerProcess, launch, wait_until
from tests.rabbitmq.conftest import amqp_url, rabbitmq, vhost  # noqa: F401  (fixtures)

from .conftest import APP


def test_rabbitmq_queue_page_lists_delayed_waiting_and_reserved(
    amqp_url: str,  # noqa: F811
    browser: Any,
    tmp_path: Path,
) -> None:
    """Given a task on a 600 s countdown on RabbitMQ, Expect the Delayed tab to list it
    with its reason and Run now to put it in its queue at once; given a worker with one
    slot holding a task behind a running one, Expect the Reserved tab to list it under
    the worker, Requeue to put it back in the queue, and the Waiting tab to list it there
    and delete it."""
    shutil.copy(Path(__file__).parents[1] / "control" / f"{APP}.py", tmp_path / f"{APP}.py")
    results = f"sqlite:///{tmp_path}/results.sqlite3"
    env = {
        **os.environ,
        "CELERIAC_BROKER_URL": amqp_url,
        "CELERIAC_RESULT_BACKEND": results,
        "PYTHONPATH": str(tmp_path),
    }
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [CELERIAC, "-A", APP, "dashboard", "--db", str(tmp_path / "dash.sqlite3")]
    dashboard = WorkerProcess(
        [*command, "--port", str(port)], tmp_path, env, tmp_path / "dashboard.log"
    )
    client = Celeriac("rb", broker=amqp_url, backend=results, set_as_current=False)
    q = f"page-{uuid.uuid4().hex[:8]}"
    gate = tmp_path / "gate"
    worker = None
    try:
        delayed = client.send_task(f"{APP}.add", [20, 22], countdown=600, queue=q)
        dashboard.wait_for(f"celeriac dashboard on http://127.0.0.1:{port}/")
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/queue/{q}")
        assert "0 waiting messages" in page.inner_text("#page-count")

        page.click("a:text('Delayed')")
        page.wait_for_url("**kind=delayed**", timeout=15_000)
        assert "1 delayed message" in page.inner_text("#page-count")
        row = page.locator(f"table.messages tr[data-id='{delayed.id}']")
        assert "countdown / eta" in row.inner_text()
        row.locator("button:text('Run now')").click()
        page.wait_for_selector(".flash:text('due now')", timeout=15_000)
        assert "0 delayed messages" in page.inner_text("#page-count")
        [taken] = client.broker.fetch([q], "check", 1, 10.0)
        assert taken.id == delayed.id
        client.broker.ack("check", [taken.tag])
        client.broker.fetch([], "check", 1, 0.0)  # no longer consuming: the worker alone is

        running = client.send_task(f"{APP}.hold", [str(gate)], queue=q)
        held = client.send_task(f"{APP}.hold", [str(gate), "held"], queue=q)
        worker = launch(
            APP, "-n", "w1@rabbit-page", "-Q", q, "-c", "1", "--prefetch-multiplier", "2",
            "-l", "WARNING", cwd=tmp_path, env=env,
        )  # fmt: skip
        page.goto(f"http://127.0.0.1:{port}/queue/{q}?kind=reserved")
        row = page.locator(f"table.messages tr[data-id='{held.id}']")
        wait_until(lambda: _reloaded(page) and row.count() == 1, 20, "the reserved task listed")
        assert "w1@rabbit-page" in row.inner_text() and "from the live workers" in page.inner_text(
            "#page-count"
        )
        row.locator("button:text('Requeue')").click()
        page.wait_for_selector(".flash:text('Requeued 1 message')", timeout=15_000)

        page.click("a:text('Waiting')")
        page.wait_for_url("**kind=waiting**", timeout=15_000)
        assert "1 waiting message" in page.inner_text("#page-count")
        row = page.locator(f"table.messages tr[data-id='{held.id}']")
        row.locator("button:text('Delete')").click()
        page.wait_for_selector(".flash:text('Deleted 1 message')", timeout=15_000)
        assert "0 waiting messages" in page.inner_text("#page-count")
        gate.touch()
        assert running.get(timeout=20) == "released"
    finally:
        if worker is not None:
            worker.kill()
        dashboard.kill()
        client.close()


def _reloaded(page: Any) -> bool:
    page.reload()
    return True
