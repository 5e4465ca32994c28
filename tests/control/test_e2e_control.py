"""Remote control of real workers: answers while busy, terminate, pool, consumers, limits,
pauses and shutdown, on SQLite and on Redis."""

from __future__ import annotations

import time

import orjson
import pytest

from celeriac.events import OLDEST, EventReceiver
from celeriac.exceptions import TaskRevokedError, TimeLimitExceeded
from tests.control.e2e import Cluster, cluster, wait_until

__all__ = ["cluster"]

NODE = "w1@e2e"


def _state(cluster: Cluster, task_id: str) -> str:
    return cluster.client.AsyncResult(task_id).state


def test_inspect_active_answers_while_every_slot_is_busy_and_terminate_kills_one(
    cluster: Cluster,
) -> None:
    worker = cluster.start(NODE, "-P", "prefork", "-c", "2", "--prefetch-multiplier", "1")
    children = set(worker.children())
    long_ones = [cluster.send("sleepy", 30), cluster.send("sleepy", 30)]
    inspect = cluster.client.control.inspect(destination=[NODE], timeout=2.0)
    wait_until(lambda: len((inspect.active() or {}).get(NODE, [])) == 2, 20, "two tasks running")

    started = time.monotonic()
    active = (inspect.active() or {})[NODE]
    assert time.monotonic() - started < 2.0  # answered by the supervisor, not a busy slot
    assert {t["id"] for t in active} == {r.id for r in long_ones}
    assert {t["name"] for t in active} == {"e2e_app.sleepy"}

    victim = long_ones[0]
    victim.revoke(terminate=True)
    wait_until(lambda: _state(cluster, victim.id) == "REVOKED", 10, "the victim to be REVOKED")
    with pytest.raises(TaskRevokedError):
        victim.get(timeout=1)
    wait_until(lambda: len(set(worker.children()) - children) == 1, 10, "a replacement child")
    assert _state(cluster, long_ones[1].id) == "STARTED" or not long_ones[1].ready()
    assert cluster.send("add", 2, 3).get(timeout=20) == 5  # the replacement consumes


def test_terminate_cancels_a_coroutine_on_the_asyncio_pool(cluster: Cluster) -> None:
    cluster.start(NODE, "-P", "asyncio", "-c", "4")
    napping = cluster.send("nap", 30)
    inspect = cluster.client.control.inspect(destination=[NODE], timeout=2.0)
    wait_until(lambda: (inspect.active() or {}).get(NODE), 20, "the coroutine to start")
    [reply] = cluster.client.control.on_revoke([napping.id], True, "SIGTERM", reply=True)
    assert reply[NODE]["terminated"] == [napping.id]
    with pytest.raises(TaskRevokedError):
        napping.get(timeout=10)
    wait_until(
        lambda: cluster.client.broker.stats("celeriac").in_flight == 0,
        10,
        "its message to be acked, not held",
    )
    assert cluster.send("add", 2, 2).get(timeout=20) == 4


def test_pool_grow_and_shrink_change_the_children(cluster: Cluster) -> None:
    worker = cluster.start(NODE, "-P", "prefork", "-c", "1")
    assert len(worker.children()) == 1
    [reply] = cluster.client.control.pool_grow(2, destination=[NODE], reply=True, timeout=5)
    assert reply[NODE]["pool_size"] == 3
    wait_until(lambda: len(worker.children()) == 3, 20, "three children")
    cluster.client.control.pool_shrink(2, destination=[NODE], reply=True, timeout=5)
    wait_until(lambda: len(worker.children()) == 1, 20, "one child left")
    assert cluster.send("add", 1, 1).get(timeout=20) == 2


def test_consumers_and_pauses_change_what_is_consumed(cluster: Cluster) -> None:
    cluster.start(NODE, "-P", "prefork", "-c", "1", "-Q", "celeriac")
    control = cluster.client.control
    extra = cluster.send("add", 1, 2, queue="extra")
    control.add_consumer("extra", destination=[NODE], reply=True, timeout=5)
    assert extra.get(timeout=20) == 3

    control.cancel_consumer("extra", destination=[NODE], reply=True, timeout=5)
    control.pause("celeriac")
    time.sleep(1.5)  # the documented delay: consumers re-read pauses once a second
    skipped = [cluster.send("add", 5, 5, queue="extra"), cluster.send("add", 6, 6)]
    # Given a while longer than a fetch takes, neither may run.
    wait_until(
        lambda: cluster.client.broker.stats("celeriac").total_waiting == 1,
        10,
        "the task on the paused queue to wait",
    )
    time.sleep(1.0)
    assert not any(r.ready() for r in skipped)
    assert cluster.client.broker.stats("extra").total_waiting == 1

    control.resume("celeriac")
    assert skipped[1].get(timeout=20) == 12
    assert not skipped[0].ready()  # "extra" is still cancelled


def test_rate_limit_and_time_limit_take_effect_on_the_next_task(cluster: Cluster) -> None:
    cluster.start(NODE, "-P", "prefork", "-c", "1")
    control = cluster.client.control
    assert cluster.send("add", 1, 1).get(timeout=20) == 2

    def seen_by_child(name: str) -> list[object]:
        return cluster.send("limits", name).get(timeout=20)  # type: ignore[no-any-return]

    control.rate_limit("e2e_app.add", "1/h", destination=[NODE], reply=True, timeout=5)
    control.time_limit("e2e_app.sleepy", soft=None, hard=1, destination=[NODE], reply=True)
    # The child applies commands from its own reader of the control stream, in about a
    # millisecond on Redis and a poll interval on SQLite: wait until it has them.
    wait_until(lambda: seen_by_child("e2e_app.add")[0] == "1/h", 10, "the child's new rate")
    assert seen_by_child("e2e_app.sleepy") == [None, None, 1]

    pair = [cluster.send("add", 2, 2), cluster.send("add", 3, 3)]
    wait_until(lambda: sum(r.ready() for r in pair) == 1, 20, "one of the two to run")
    if cluster.url.startswith("amqp"):  # its delay ladder is shared: no per-queue count
        stats = cluster.client.broker.stats
        wait_until(lambda: stats("celeriac").total_waiting == 0, 20, "the other to leave")
    else:
        wait_until(
            lambda: cluster.client.broker.stats("celeriac").delayed == 1,
            20,
            "the other to wait in the delayed set for its slot, an hour away",
        )
    slow = cluster.send("sleepy", 20)
    with pytest.raises(TimeLimitExceeded):
        slow.get(timeout=20)

    def failed_event() -> bool:  # the supervisor tells it: the child that ran it is gone
        with EventReceiver(cluster.client, after=OLDEST) as receiver:
            events = list(receiver.iter(timeout=0.1))
        return any(e.type == "task-failed" and e.task_id == slow.id for e in events)

    wait_until(failed_event, 10, "a task-failed event for the killed task")
    assert sum(r.ready() for r in pair) == 1  # the other still waits for its slot


def test_shutdown_is_warm(cluster: Cluster) -> None:
    worker = cluster.start(NODE, "-P", "prefork", "-c", "1")
    running = cluster.send("sleepy", 1.5)
    wait_until(
        lambda: (
            _state(cluster, running.id) != "PENDING"
            or (cluster.client.control.inspect(destination=[NODE]).active() or {}).get(NODE)
        ),
        20,
        "the task to start",
    )
    assert cluster.client.control.shutdown(destination=[NODE], reply=True, timeout=5) == [
        {NODE: {"ok": "shutting down"}}
    ]
    assert worker.process.wait(30) == 0
    assert running.get(timeout=5) == 1.5  # finished before the worker stopped
    assert cluster.client.control.ping(destination=[NODE], timeout=0.5) == []


@pytest.mark.redis
@pytest.mark.parametrize("cluster", ["redis"], indirect=True)  # SQLite sweeps them itself
def test_reply_streams_expire_on_redis(cluster: Cluster) -> None:
    import redis

    cluster.start(NODE, "-P", "threads", "-c", "1")
    broker = cluster.client.broker
    before = broker.streams.last("control")
    assert cluster.client.control.ping(destination=[NODE], timeout=5) == [{NODE: {"ok": "pong"}}]
    [(_, data)] = [i for i in broker.streams.read("control", before) if b'"ping"' in i[1]]
    command_id = orjson.loads(data)["id"]
    prefix = cluster.url.partition("global_keyprefix=")[2]
    client = redis.Redis.from_url(cluster.url.partition("?")[0])
    assert 0 < client.ttl(f"{prefix}:stream:reply:{command_id}") <= 3600
    client.close()
