"""End to end, live pages: the overview and the task list follow server-sent events
(a few coalesced fetches a second under a flood of events; tests/dashboard/test_live.py
shows the stream silent while idle),
and poll when the browser has no EventSource. Real worker, uvicorn, headless Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celeriac import Celeriac
from tests.e2e.workers import WorkerProcess, wait_until

from .conftest import APP, Served, flood


def _fetches(page: Any, since: float, until: float) -> list[float]:
    """When the page fetched its live part, in the page's clock (ms), between two times.

    Read from the page's resource timings: the test thread is busy flooding meanwhile,
    so Playwright's request callbacks would only run (and be timed) afterwards."""
    starts = page.evaluate(
        "performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('partial=1')).map(e => e.startTime)"
    )
    return [t for t in starts if since <= t <= until]


def _wait_for_expression(page: Any, expression: str, timeout: float = 30.0) -> None:
    """Poll a JavaScript expression until it is true. Not ``wait_for_function``: that
    evaluates its string in the page, which the dashboard's Content-Security-Policy
    forbids (no 'unsafe-eval'), while ``evaluate`` runs outside the page's policy."""
    wait_until(lambda: page.evaluate(expression), timeout, expression)


def _now(page: Any) -> float:
    return float(page.evaluate("performance.now()"))


def test_live_pages_follow_the_stream_and_fall_back_to_polling(
    cluster: tuple[Celeriac, WorkerProcess], browser: Any, tmp_path: Path
) -> None:
    client, _worker = cluster
    served = Served(client, tmp_path / "dash.sqlite3", refresh_ms=1000, live_interval=0.5)
    base = served.url
    try:
        assert client.send_task(f"{APP}.add", [1, 1]).get(timeout=30) == 2
        page = browser.new_page()
        page.goto(f"{base}/tasks")
        page.wait_for_selector("#live[data-mode=stream]", timeout=15_000)
        before = _now(page)
        added = client.send_task(f"{APP}.add", [20, 22])
        assert added.get(timeout=30) == 42
        page.wait_for_selector(f"#live a[href$='/task/{added.id}']", timeout=15_000)  # pushed
        assert _fetches(page, before, _now(page)), "the new task came by a fetch"
        # A flood: 2,000 tasks a second for 4 s; the page fetches at most twice a second, and
        # at least twice in 4 s, which its 10 s safety poll alone would not do.
        began = _now(page)
        flood(client, seconds=4.0, tasks_per_second=2000)
        ended = _now(page)
        during = _fetches(page, began, ended)
        flooded = (ended - began) / 1000
        assert 2 <= len(during) <= flooded / 0.5 + 2, (len(during), flooded)  # + safety poll
        page.fill("input[name=search]", "flood-1234")  # still usable: search the flood
        page.press("input[name=search]", "Enter")
        page.wait_for_selector("table.tasks a[href$='/task/flood-1234']", timeout=15_000)
        page.goto(f"{base}/")  # the overview follows the stream too
        page.wait_for_selector("#live[data-mode=stream]", timeout=15_000)
        before = _now(page)
        assert client.send_task(f"{APP}.add", [3, 3]).get(timeout=30) == 6
        _wait_for_expression(
            page,
            f"performance.getEntriesByType('resource').some(e => "
            f"e.name.includes('partial=1') && e.startTime > {before})",
            timeout=8.0,  # before the 10 s safety poll: the stream asked for it
        )
        # Without EventSource the same pages poll every refresh_ms.
        polling = browser.new_page()
        polling.add_init_script("delete window.EventSource")
        polling.goto(f"{base}/")
        polling.wait_for_selector("#live[data-mode=poll]", timeout=15_000)
        started = _now(polling)
        later = client.send_task(f"{APP}.add", [2, 2])
        assert later.get(timeout=30) == 4
        _wait_for_expression(polling, "document.querySelectorAll('[data-updated]').length > 0")
        polling.wait_for_timeout(2500)
        assert len(_fetches(polling, started, _now(polling))) >= 2
    finally:
        served.stop()
