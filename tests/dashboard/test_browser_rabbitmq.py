"""The queue page on RabbitMQ, in Chromium, with ``celeriac dashboard`` as a real process:
delayed messages listed and run now; waiting and reserved ones explained, tabs kept."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path
from typing import Any

from celeriac import Celeriac
from tests.e2e.workers import CELERIAC, WorkerProcess
from tests.rabbitmq.conftest import amqp_url, rabbitmq, vhost  # noqa: F401  (fixtures)

from .conftest import APP


def test_rabbitmq_queue_page_lists_delayed_and_says_why_not_waiting(
    amqp_url: str,  # noqa: F811
    browser: Any,
    tmp_path: Path,
) -> None:
    """Given a task on a 600 s countdown on RabbitMQ, Expect the queue page to say why
    waiting and reserved messages are not listed, its Delayed tab to list the task with
    its reason, and Run now to put it in its queue at once."""
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
    try:
        delayed = client.send_task(f"{APP}.add", [20, 22], countdown=600, queue=q)
        dashboard.wait_for(f"celeriac dashboard on http://127.0.0.1:{port}/")
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/queue/{q}")
        assert "0 waiting messages" in page.inner_text("#page-count")
        page.click("a:text('Reserved')")
        page.wait_for_url("**kind=reserved**", timeout=15_000)
        assert "inspect reserved" in page.inner_text("#live")

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
    finally:
        dashboard.kill()
        client.close()
