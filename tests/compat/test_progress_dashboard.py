"""``update_state`` progress as the dashboard shows it: the task page reads the state the
task named and its meta under "Progress" while it runs, and the result once it is done.

Given a real worker running a task that reports two steps (tests/compat/hooks_app.py),
when its events reach the dashboard, expect its page to show PROGRESS and the meta of
the step it is on, then SUCCESS and the result.
"""

from __future__ import annotations

from pathlib import Path

from tests.compat.helpers import project_module
from tests.dashboard.helpers import dashboard_client
from tests.e2e.workers import StartWorker, wait_until


def test_the_task_page_shows_progress_then_the_result(
    start_worker: StartWorker, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    env = {
        "CELERIAC_BROKER_URL": url,
        "CELERIAC_RESULT_BACKEND": url,
        "HOOKS_LOG": str(tmp_path / "hooks.log"),
    }
    with project_module("hooks_app", tmp_path) as module:
        app = module.app
        app.conf.update(broker_url=url, result_backend=url)
        start_worker("hooks_app", "-P", "threads", "-c", "1", env=env)
        gate = tmp_path / "gate"
        result = module.progress.delay(2, str(gate))
        client = dashboard_client(app, tmp_path)
        collector = client.app.state.dashboard.collector  # type: ignore[attr-defined]

        def page() -> str:
            collector.drain()
            return client.get(f"/task/{result.id}").text

        wait_until(lambda: "Progress (PROGRESS)" in page(), 20, "the progress on the page")
        assert "{&#34;current&#34;:1,&#34;total&#34;:2}" in page()
        Path(f"{gate}.1").touch()
        wait_until(lambda: "{&#34;current&#34;:2,&#34;total&#34;:2}" in page(), 20, "step 2")
        Path(f"{gate}.2").touch()
        assert result.get(timeout=20) == "done"
        wait_until(lambda: "<h2>Result</h2>" in page(), 20, "the result on the page")
        assert "Progress (" not in page()
        assert '<span class="state progress">task-progress</span>' in page()  # the timeline
        assert client.get(f"/api/task/info/{result.id}").json()["state"] == "SUCCESS"
        app.close()
