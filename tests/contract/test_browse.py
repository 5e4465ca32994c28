"""Browsing what waits (``broker.browse``): waiting, delayed and reserved messages of a
queue, paged both ways, and deleting, running now and requeueing single messages.

RabbitMQ lists waiting and delayed messages (``browse_waiting``, ``browse_delayed``);
its workers alone know what they reserved (tests/rabbitmq/test_browse_reserved.py)."""

from __future__ import annotations

import time

import pytest

from celeriac.brokers.base import Broker

from .env import BrokerEnv
from .helpers import drain, envelope, ids


def _listed(broker: Broker, q: str, kind: str, **page: object) -> list[str]:
    assert broker.browse is not None
    return [m.id for m in broker.browse.messages(q, kind, **page)]  # type: ignore[arg-type]


@pytest.mark.needs("browse")
def test_pages_list_each_kind_in_order_both_ways(env: BrokerEnv, broker: Broker) -> None:
    """Given waiting messages of two priorities, delayed ones and a reserved one, Expect
    waiting listed in the order workers take them (priority, then age) and reversed,
    delayed by due time, reserved with its holder, each paged and counted."""
    q = env.q("browse")
    now = time.time()
    broker.publish([envelope(q, 9, task_id="held")])
    [held] = broker.fetch([q], "c1", 1, 0.0)
    broker.publish([envelope(q, 1, task_id=f"low{i}") for i in range(3)])
    broker.publish([envelope(q, 7, task_id=f"high{i}") for i in range(2)])
    broker.publish([envelope(q, 5, task_id="later", eta=now + 120)])
    broker.publish([envelope(q, 5, task_id="sooner", eta=now + 60)])
    browse = broker.browse
    assert browse is not None

    order = ["high0", "high1", "low0", "low1", "low2"]
    assert _listed(broker, q, "waiting") == order
    assert _listed(broker, q, "waiting", newest_first=True) == order[::-1]
    assert _listed(broker, q, "waiting", limit=2, offset=1) == order[1:3]
    assert _listed(broker, q, "waiting", limit=2, offset=1, newest_first=True) == ["low1", "low0"]
    assert _listed(broker, q, "delayed") == ["sooner", "later"]
    assert _listed(broker, q, "delayed", newest_first=True) == ["later", "sooner"]
    [reserved] = browse.messages(q, "reserved")
    assert (reserved.id, reserved.holder, reserved.deliveries) == ("held", "c1", 1)
    [first] = browse.messages(q, "waiting", limit=1)
    assert first.body == b"body-high0" and first.priority == 7
    assert first.since is not None and abs(first.since - time.time()) < 30
    [soon] = browse.messages(q, "delayed", limit=1)
    assert soon.eta is not None and abs(soon.eta - (now + 60)) < 1
    counts = {kind: browse.count(q, kind) for kind in ("waiting", "delayed", "reserved")}
    assert counts == {"waiting": 5, "delayed": 2, "reserved": 1}
    assert held.id == "held"


@pytest.mark.needs("browse")
def test_delete_run_now_and_requeue_single_messages(env: BrokerEnv, broker: Broker) -> None:
    """When a waiting and a delayed message are deleted, another delayed one run now and a
    reserved one requeued, Expect exactly those changes: the one run now and the requeued
    one are fetched next, the holder's late ack is ignored, the others stay."""
    q = env.q("act")
    broker.publish([envelope(q, 5, task_id="taken")])
    [taken] = broker.fetch([q], "c1", 1, 0.0)
    broker.publish([envelope(q, 5, task_id=name) for name in ("keep", "drop")])
    later = time.time() + 600
    broker.publish([envelope(q, 5, task_id=name, eta=later) for name in ("wait", "gone", "now")])
    browse = broker.browse
    assert browse is not None

    assert browse.delete(q, "waiting", ["drop", "unknown"]) == 1
    assert browse.delete(q, "delayed", ["gone"]) == 1
    assert browse.run_now(q, ["now"]) == 1
    assert browse.requeue(q, ["taken"]) == 1
    with pytest.raises(ValueError, match="requeue"):
        browse.delete(q, "reserved", ["taken"])
    broker.ack("c1", [taken.tag])  # the old holder's ack: ignored

    assert _listed(broker, q, "delayed") == ["wait"]
    assert sorted(ids(drain(broker, [q], "c2"))) == ["keep", "now", "taken"]
    assert browse.count(q, "reserved") == 0


@pytest.mark.needs("browse_delayed")
def test_delayed_messages_paged_deleted_and_run_now(env: BrokerEnv, broker: Broker) -> None:
    """Given delayed messages of a queue and of another, Expect the queue's listed by due
    time both ways, paged, with eta and priority, counted; when one is deleted and one run
    now, Expect the one run now fetched next, uncounted, and only the third still delayed."""
    q, other = env.q("delayed"), env.q("other")
    now = time.time()
    broker.publish([envelope(q, 3, task_id=f"d{i}", eta=now + 300 - 10 * i) for i in range(3)])
    broker.publish([envelope(other, 5, task_id="elsewhere", eta=now + 100)])
    browse = broker.browse
    assert browse is not None

    assert _listed(broker, q, "delayed") == ["d2", "d1", "d0"]
    assert _listed(broker, q, "delayed", newest_first=True) == ["d0", "d1", "d2"]
    assert _listed(broker, q, "delayed", limit=1, offset=1) == ["d1"]
    [soon] = browse.messages(q, "delayed", limit=1)
    assert soon.eta is not None and abs(soon.eta - (now + 280)) < 1
    assert (soon.priority, soon.body) == (3, b"body-d2")
    assert browse.count(q, "delayed") == 3

    assert browse.delete(q, "delayed", ["d1", "unknown"]) == 1
    assert browse.run_now(q, ["d2"]) == 1
    [ran] = drain(broker, [q], "c1")
    assert (ran.id, ran.deliveries) == ("d2", 1)
    assert _listed(broker, q, "delayed") == ["d0"]
    assert _listed(broker, other, "delayed") == ["elsewhere"]


@pytest.mark.needs("browse_waiting")
def test_waiting_paged_both_ways_and_deleted_without_costing_a_delivery(
    env: BrokerEnv, broker: Broker
) -> None:
    """Given waiting messages of two priorities listed three times, Expect them in the order
    workers take them and reversed, paged, counted; when one is deleted, Expect the others
    fetched as their first delivery by a consumer allowed only one (max_deliveries=1)."""
    q = env.q("waiting")
    broker.publish([envelope(q, 2, task_id=f"low{i}") for i in range(2)])
    broker.publish([envelope(q, 8, task_id="high")])
    browse = broker.browse
    assert browse is not None

    order = ["high", "low0", "low1"]
    for _ in range(3):
        assert _listed(broker, q, "waiting") == order
    assert _listed(broker, q, "waiting", newest_first=True) == order[::-1]
    assert _listed(broker, q, "waiting", limit=1, offset=1) == ["low0"]
    assert browse.count(q, "waiting") == 3
    assert browse.delete(q, "waiting", ["low0", "unknown"]) == 1

    strict = env.connect(max_deliveries=1)
    got = drain(strict, [q], "c1")
    assert [(d.id, d.deliveries) for d in got] == [("high", 1), ("low1", 1)]
    assert strict.stats(q).dead == 0
