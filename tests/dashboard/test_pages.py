"""Pages rendered from a stored history: figures people read, a task's workflow tree."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac.backends.base import TaskMeta
from celeriac.dashboard.pages import rate

from .helpers import dashboard_client, lifecycle


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
    page = dashboard_client(cel, tmp_path).get("/")
    assert '<b id="throughput">13</b>' in page.text
    assert "<b>750</b><span>succeeded" in page.text


def _chord_history(cel: Celeriac) -> None:
    """A chord of three (m0 first, so every task's root) whose callback cb ran after m2
    finished last, cb's chained task c1, and an unrelated task."""
    at = time.time() - 100
    for i in range(3):
        lifecycle(cel, f"m{i}", name="proj.add", at=at + i, root_id="m0", args=[i, i])
    lifecycle(cel, "cb", name="proj.tsum", at=at + 10, root_id="m0", parent_id="m2")
    lifecycle(cel, "c1", name="proj.mul", at=at + 20, root_id="m0", parent_id="cb")
    lifecycle(cel, "alone", name="proj.add", at=at)


def test_a_chord_members_page_shows_the_whole_workflow(cel: Celeriac, tmp_path: Path) -> None:
    """Given a chord's members grouped in the result backend, Expect a member's page to list
    the group's three members together, the callback under the member that finished last,
    the callback's chained task under it, each linked with its state; and a lone task's
    page to say it is on its own."""
    _chord_history(cel)
    cel.backend.store(
        [TaskMeta(f"m{i}", "SUCCESS", i * 2, name="proj.add", group_id="g-1") for i in range(3)]
    )
    client = dashboard_client(cel, tmp_path)
    page = client.get("/task/m1").text
    tree = page[page.index('<ul class="tree">') :]
    order = [tree.index(f'data-task="{name}"') for name in ("m0", "m1", "m2", "cb", "c1")]
    assert order == sorted(order)
    assert 'group <span class="code">g-1</span> · 3 tasks' in tree
    member = re.search(r'<li class="here" data-task="m1"><a href="/task/m1">proj.add</a>', tree)
    assert member is not None and "(this task)" in tree
    callback = tree[tree.index('data-task="m2"') :]
    assert callback.index('data-task="cb"') < callback.index("</li>")  # nested in m2
    chained = tree[tree.index('data-task="cb"') :]
    assert chained.index('data-task="c1"') < chained.index("</li>")  # nested in cb
    assert '<a href="/task/cb">proj.tsum</a> <span class="code muted">cb</span> ' in tree
    assert '<span class="state success">SUCCESS</span>' in tree
    assert 'data-task="alone"' not in page
    assert "a task on its own" in client.get("/task/alone").text


def test_without_group_ids_the_tree_still_links_every_task(cel: Celeriac, tmp_path: Path) -> None:
    _chord_history(cel)
    page = dashboard_client(cel, tmp_path).get("/task/c1").text
    tree = page[page.index('<ul class="tree">') :]
    assert 'class="group"' not in tree
    for name in ("m0", "m1", "m2", "cb", "c1"):
        assert f'<a href="/task/{name}">' in tree
