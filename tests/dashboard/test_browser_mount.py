"""End to end, the dashboard mounted under a path prefix of another site, in Chromium:
styles and script load, the live stream updates the page, forms act and come back."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import uvicorn

from celeriac import Celeriac
from celeriac.dashboard import create_app
from celeriac.events import dispatcher_for
from tests.e2e.workers import wait_until

from .helpers import lifecycle
from .test_mount import PREFIX, host_app


def test_the_mounted_dashboard_lives_and_acts_under_its_prefix(
    browser: Any, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    client = Celeriac("client", broker=url, backend=url, set_as_current=False)
    dashboard = create_app(client, store=tmp_path / "dash.sqlite3")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(host_app(dashboard), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}{PREFIX}"
    try:
        wait_until(lambda: server.started, 20, "the site to start")
        waiting = client.send_task("proj.add", [1, 2])  # no worker: it waits in "celeriac"
        page = browser.new_page()
        page.goto(f"{base}/tasks")
        page.wait_for_selector(f"#live a[href='{PREFIX}/task/{waiting.id}']", timeout=15_000)
        header = page.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor")
        assert header == "rgb(29, 35, 48)"  # app.css, from under the prefix
        page.wait_for_selector("#live[data-mode='stream']", timeout=15_000)  # app.js, /live
        lifecycle(client, "later-1", name="proj.mul")  # events while the page is open
        page.wait_for_selector(f"#live a[href='{PREFIX}/task/later-1']", timeout=15_000)
        page.click("nav a:text('Queues')")
        page.wait_for_url(f"{base}/queues", timeout=15_000)
        page.click("tr:has-text('celeriac') >> button:text('Pause')")
        page.wait_for_selector(".flash:text('Paused celeriac')", timeout=15_000)
        assert page.url.startswith(f"{base}/queues?")
        assert "celeriac" in client.control.paused()
        page.goto(f"{base}/task/{waiting.id}")
        page.click("button:text('Revoke')")
        page.wait_for_selector(f".flash:text('Revoked \\'{waiting.id}\\'')", timeout=15_000)
        assert page.url.startswith(f"{base}/task/{waiting.id}?")
        assert client.broker.revocations.revoked([waiting.id]) == {waiting.id}
    finally:
        dashboard.state.dashboard.changes.close()
        server.should_exit = True
        thread.join(20)
        dashboard.state.dashboard.store.close()
        dispatcher_for(client).close()
        client.close()
