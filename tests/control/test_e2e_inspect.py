"""``inspect active`` and ``inspect reserved`` against real workers on every pool, and
control commands reaching a prefork child that was just forked; on SQLite and on Redis.

Tasks run ``hold``, which returns once the test creates its gate file: the test decides
when each task ends, so nothing here depends on how fast the machine is.
"""

from __future__ import annotations

from typing import Any

import pytest

from celeriac.control.client import Inspect
from tests.control.e2e import Cluster, cluster, wait_until

__all__ = ["cluster"]

NODE = "w1@e2e"
POOLS = ["prefork", "threads", "solo", "asyncio"]


def _tasks(answer: dict[str, Any] | None) -> list[dict[str, Any]]:
    tasks = (answer or {}).get(NODE)
    return tasks if isinstance(tasks, list) else []


def _ids(answer: dict[str, Any] | None) -> list[str]:
    return [task["id"] for task in _tasks(answer)]


def _inspect(cluster: Cluster) -> Inspect:
    return cluster.client.control.inspect(destination=[NODE], timeout=3.0)


@pytest.mark.parametrize("pool", POOLS)
def test_reserved_lists_a_prefetched_task_until_it_starts(cluster: Cluster, pool: str) -> None:
    # Given two tasks waiting, and a worker with one slot that prefetches two messages
    gate1, gate2 = cluster.dir / "gate1", cluster.dir / "gate2"
    first = cluster.send("hold", str(gate1))
    second = cluster.send("hold", str(gate2), 7, kwargs={"tag": "second"})
    cluster.start(NODE, "-P", pool, "-c", "1", "--prefetch-multiplier", "2")
    inspect = _inspect(cluster)

    # When the first runs, Expect the second listed as reserved, with what it will run
    wait_until(lambda: _ids(inspect.active()) == [first.id], 20, "the first task to run")
    [active] = _tasks(inspect.active())
    assert (active["args"], active["kwargs"], active["hostname"]) == ([str(gate1)], {}, NODE)
    [reserved] = _tasks(inspect.reserved())
    assert reserved["id"] == second.id
    assert reserved["name"] == "e2e_app.hold", reserved.get("error")
    assert (reserved["args"], reserved["kwargs"]) == ([str(gate2), 7], {"tag": "second"})
    assert (reserved["queue"], reserved["priority"], reserved["deliveries"]) == ("celeriac", 5, 1)
    assert reserved["time_start"] is None and reserved["acknowledged"] is False
    assert reserved["eta"] is None and reserved["hostname"] == NODE
    assert reserved["delivery_info"]["redelivered"] is False

    # When the first ends, Expect the second to move from reserved to active
    gate1.touch()
    wait_until(lambda: _ids(inspect.active()) == [second.id], 20, "the second task to start")
    assert _tasks(inspect.reserved()) == []
    gate2.touch()
    assert second.get(timeout=20) == "released" and first.get(timeout=20) == "released"


def test_reserved_on_prefork_collects_what_each_child_holds(cluster: Cluster) -> None:
    # Given four tasks and two children that each hold two: one running, one prefetched
    gate = cluster.dir / "gate"
    sent = [cluster.send("hold", str(gate), n) for n in range(4)]
    worker = cluster.start(NODE, "-P", "prefork", "-c", "2", "--prefetch-multiplier", "2")
    inspect = _inspect(cluster)
    wait_until(lambda: len(_ids(inspect.active())) == 2, 20, "both children to be busy")
    wait_until(lambda: len(_ids(inspect.reserved())) == 2, 20, "both to hold one more")

    # Expect each child's prefetched message listed once, under that child's pid
    active, reserved = _tasks(inspect.active()), _tasks(inspect.reserved())
    assert {t["id"] for t in active} | {t["id"] for t in reserved} == {r.id for r in sent}
    children = set(worker.children())
    assert {t["worker_pid"] for t in reserved} == {t["worker_pid"] for t in active} == children
    gate.touch()
    assert [r.get(timeout=20) for r in sent] == ["released"] * 4


def test_active_on_prefork_shows_arguments_and_cuts_large_ones(cluster: Cluster) -> None:
    worker = cluster.start(NODE, "-P", "prefork", "-c", "2", "--prefetch-multiplier", "1")
    gate = cluster.dir / "gate"
    small = cluster.send("hold", str(gate), 1, "two", kwargs={"three": 3})
    large = cluster.send("hold", str(gate), kwargs={"blob": "x" * 20_000})
    inspect = _inspect(cluster)
    wait_until(lambda: len(_ids(inspect.active())) == 2, 20, "both tasks to run")

    by_id = {task["id"]: task for task in _tasks(inspect.active())}
    assert by_id[small.id]["args"] == [str(gate), 1, "two"]
    assert by_id[small.id]["kwargs"] == {"three": 3}
    assert "truncated" not in by_id[small.id]
    # Beyond event_args_max_size (10,000 bytes of JSON), as task events cut them
    cut = by_id[large.id]["kwargs"]
    assert by_id[large.id]["truncated"] == ["kwargs"]
    assert by_id[large.id]["args"] == [str(gate)]
    assert cut == '{"blob":"' + "x" * (10_000 - 9) + "..."
    children = set(worker.children())
    assert {task["worker_pid"] for task in by_id.values()} <= children
    assert all(task["time_start"] and task["name"] == "e2e_app.hold" for task in by_id.values())
    gate.touch()
    assert small.get(timeout=20) == large.get(timeout=20) == "released"


def test_a_command_sent_right_after_pool_grow_reaches_the_new_child(cluster: Cluster) -> None:
    # Given a one-child worker whose child is busy
    worker = cluster.start(NODE, "-P", "prefork", "-c", "1", "--prefetch-multiplier", "1")
    gate = cluster.dir / "gate"
    busy = cluster.send("hold", str(gate))
    inspect = _inspect(cluster)
    wait_until(lambda: _ids(inspect.active()) == [busy.id], 20, "the first child to be busy")

    # When the pool grows and a command follows at once, before the new child has booted
    control = cluster.client.control
    [reply] = control.pool_grow(1, destination=[NODE], reply=True, timeout=5)
    assert reply[NODE]["pool_size"] == 2
    control.rate_limit("e2e_app.add", "1/h", destination=[NODE])

    # Expect the new child (the only free one) to apply it
    def seen_by_new_child() -> object:
        return cluster.send("limits", "e2e_app.add").get(timeout=20)[0]

    wait_until(lambda: seen_by_new_child() == "1/h", 20, "the new child to apply the rate")
    assert len(worker.children()) == 2
    gate.touch()
    assert busy.get(timeout=20) == "released"


def test_reserved_is_empty_when_nothing_is_prefetched(cluster: Cluster) -> None:
    cluster.start(NODE, "-P", "prefork", "-c", "2")
    assert (_inspect(cluster).reserved() or {}).get(NODE) == []
