"""Reserved messages on RabbitMQ, which only the workers know: ``celeriac queues show Q
--reserved`` lists a real worker's own answer; delete revokes, requeue gives back.

Tasks run ``hold``, which returns once the test creates its gate file: the test decides
when each task ends, so nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from celeriac.cli.main import cli
from tests.control.e2e import Cluster, cluster, wait_until

__all__ = ["cluster"]

NODE = "w1@reserved"


def _cli(cluster: Cluster, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setattr(sys.modules[__name__], "cli_app", cluster.client, raising=False)
    return CliRunner().invoke(cli, ["-A", f"{__name__}:cli_app", "queues", *args])


def _shown(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    done = _cli(cluster, monkeypatch, "show", "celeriac", "--reserved", "--json")
    assert done.exit_code == 0, done.output
    page: dict[str, Any] = orjson.loads(done.output)
    return page


@pytest.mark.parametrize("pool", ["prefork", "threads"])
@pytest.mark.parametrize("cluster", ["rabbitmq"], indirect=True)
def test_cli_lists_reserved_from_the_worker_then_revokes_and_requeues(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, pool: str
) -> None:
    """Given a worker with one slot running a task and holding two more, Expect `queues
    show --reserved` to list the two with worker, task, priority and since when; when one
    is deleted, Expect it revoked (not run); when the other is requeued, Expect it back in
    the queue, waiting, then run once."""
    gate1, gate2 = cluster.dir / "gate1", cluster.dir / "gate2"
    first = cluster.send("hold", str(gate1))
    kept = cluster.send("hold", str(gate2), "kept", priority=3)
    dropped = cluster.send("hold", str(gate2), "dropped", priority=3)
    cluster.start(NODE, "-P", pool, "-c", "1", "--prefetch-multiplier", "3")
    wait_until(lambda: _shown(cluster, monkeypatch)["count"] == 2, 20, "two reserved")

    page = _shown(cluster, monkeypatch)
    listed = {m["id"]: m for m in page["messages"]}
    assert set(listed) == {kept.id, dropped.id} and "workers" in page["source"]
    entry = listed[kept.id]
    assert (entry["holder"], entry["task"], entry["priority"]) == (NODE, "e2e_app.hold", 3)
    assert entry["args"] == [str(gate2), "kept"] and entry["deliveries"] == 1
    assert entry["since"] is not None and entry["kind"] == "reserved"
    text = _cli(cluster, monkeypatch, "show", "celeriac", "--reserved")
    assert text.exit_code == 0 and "2 reserved messages" in text.output
    assert f"held by {NODE}, delivery 1, taken" in text.output

    deleted = _cli(cluster, monkeypatch, "act", "delete", "celeriac", dropped.id, "--reserved")
    assert deleted.exit_code == 0 and "1 message deleted" in deleted.output, deleted.output
    requeued = _cli(cluster, monkeypatch, "act", "requeue", "celeriac", kept.id)
    assert requeued.exit_code == 0 and "1 message requeued" in requeued.output, requeued.output
    assert [m["id"] for m in _shown(cluster, monkeypatch)["messages"]] == [dropped.id]
    waiting = _cli(cluster, monkeypatch, "show", "celeriac", "--json")
    assert [m["id"] for m in orjson.loads(waiting.output)["messages"]] == [kept.id]
    again = _cli(cluster, monkeypatch, "act", "requeue", "celeriac", kept.id)
    assert again.exit_code == 1 and "0 messages requeued of 1 asked" in again.output

    gate1.touch()
    gate2.touch()
    assert first.get(timeout=20) == "released" and kept.get(timeout=20) == "released"
    wait_until(lambda: dropped.state == "REVOKED", 20, "the deleted one revoked")


@pytest.mark.parametrize("cluster", ["rabbitmq"], indirect=True)
def test_a_message_pushed_into_a_busy_workers_window_is_listed_and_given_back(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a worker with room in its prefetch window, running a task, and a message sent
    afterwards (RabbitMQ pushes it to the worker's connection before its consumer asks for
    it), Expect it listed as reserved by that worker, and requeue to put it back waiting."""
    gate = cluster.dir / "gate"
    first = cluster.send("hold", str(gate))
    cluster.start(NODE, "-P", "prefork", "-c", "1", "--prefetch-multiplier", "2")
    inspect = cluster.client.control.inspect(destination=[NODE], timeout=3.0)
    wait_until(lambda: (inspect.active() or {}).get(NODE), 20, "the first task to run")
    late = cluster.send("hold", str(gate), "late")

    wait_until(lambda: _shown(cluster, monkeypatch)["count"] == 1, 20, "the late one listed")
    [entry] = _shown(cluster, monkeypatch)["messages"]
    assert (entry["id"], entry["holder"], entry["args"]) == (late.id, NODE, [str(gate), "late"])
    requeued = _cli(cluster, monkeypatch, "act", "requeue", "celeriac", late.id)
    assert requeued.exit_code == 0 and "1 message requeued" in requeued.output, requeued.output
    waiting = _cli(cluster, monkeypatch, "show", "celeriac", "--json")
    assert [m["id"] for m in orjson.loads(waiting.output)["messages"]] == [late.id]
    gate.touch()
    assert first.get(timeout=20) == "released" and late.get(timeout=20) == "released"
