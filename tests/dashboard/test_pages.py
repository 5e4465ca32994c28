"""Pages rendered from a stored history: figures people read, a task's workflow tree."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from celeriac import Celeriac
from celeriac.dashboard import create_app
from celeriac.dashboard.pages import rate

from .helpers import lifecycle


@pytest.fixture
def cel(tmp_path: Path) -> Iterator[Celeriac]:
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    app = Celeriac("t", broker=url, backend=url, set_as_current=False, task_send_sent_event=False)
    yield app
    app.close()


def _client(cel: Celeriac, tmp_path: Path, **options: Any) -> TestClient:
    web = create_app(cel, store=tmp_path / "dash.sqlite3", collect=False, **options)
    web.state.dashboard.collector.drain()
    return TestClient(web)


@pytest.mark.parametrize(
    ("per_minute", "shown"),
    [(0, "0"), (0.02, "< 0.1"), (0.3, "0.3"), (2.5, "2.5"), (9.94, "9.9"), (12.5, "13"),
     (99.4, "99"), (1249.6, "1,250"), (2_000_000, "2,000,000")],
)  # fmt: skip
def test_rates_read_as_people_write_them(per_minute: float, shown: str) -> None:
    assert rate(per_minute) == shown


def test_the_overview_shows_tasks_per_minute_readably(cel: Celeriac, tmp_path: Path) -> None:
    """Given 750 tasks finished within the last hour (12.5 a minute), Expect "13"."""
    now = time.time()
    for i in range(750):
        lifecycle(cel, f"t-{i}", at=now - 600 + i * 0.1)
    page = _client(cel, tmp_path).get("/")
    assert '<b id="throughput">13</b>' in page.text
    assert "<b>750</b><span>succeeded" in page.text
