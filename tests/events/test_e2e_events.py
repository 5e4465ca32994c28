"""Events from real workers, on SQLite and Redis: every task event type, worker events,
and a receiver that resumes where it stopped."""

from __future__ import annotations

from pathlib import Path

from celeriac.events import OLDEST, Event, EventReceiver
from tests.control.e2e import Cluster, cluster, wait_until

__all__ = ["cluster"]

NODE = "w1@events"


def _read_all(cluster: Cluster) -> list[Event]:
    with EventReceiver(cluster.client, after=OLDEST) as receiver:
        return list(receiver.iter(timeout=0.2))


def _types_of(events: list[Event], task_id: str) -> list[str]:
    # The stream is in order of arrival: a producer's task-sent may arrive after the
    # worker's first events for it. Each event's timestamp tells the order they happened.
    mine = [e for e in events if e.task_id == task_id]
    return [e.type for e in sorted(mine, key=lambda e: e.timestamp)]


def test_every_event_type_from_a_real_worker(cluster: Cluster, tmp_path: Path) -> None:
    worker = cluster.start(NODE, "-P", "prefork", "-c", "2")
    ok = cluster.send("add", 20, 22)
    failed = cluster.send("boom")
    retried = cluster.send("flaky")
    revoked = cluster.send("add", 1, 1, countdown=1.0)
    revoked.revoke()
    assert ok.get(timeout=20) == 42 and retried.get(timeout=20) == "ok"
    failed.get(timeout=20, propagate=False)
    wait_until(lambda: revoked.state == "REVOKED", 20, "the revoked task to be skipped")
    long_one = cluster.send("sleepy", 30)
    wait_until(
        lambda: (
            long_one.state == "STARTED"
            or any(
                e.type == "task-started" and e.task_id == long_one.id for e in _read_all(cluster)
            )
        ),
        20,
        "the long task to start",
    )
    long_one.revoke(terminate=True)
    wait_until(lambda: long_one.state == "REVOKED", 20, "the long task to be terminated")
    assert worker.stop() == 0

    def all_there() -> bool:
        events = _read_all(cluster)
        return bool(events) and events[-1].type == "worker-offline"

    wait_until(all_there, 10, "the worker's last events")
    events = _read_all(cluster)
    flow = ["task-sent", "task-received", "task-started"]
    assert _types_of(events, ok.id) == [*flow, "task-succeeded"]
    assert _types_of(events, failed.id) == [*flow, "task-failed"]
    assert _types_of(events, retried.id) == [
        *flow,
        "task-retried",
        "task-received",
        "task-started",
        "task-succeeded",
    ]
    # REVOKED from the revoker as it waits on its countdown (the worker may stop before
    # its countdown ends and it skips it: received, revoked again)
    assert _types_of(events, revoked.id)[:2] == ["task-sent", "task-revoked"]
    assert _types_of(events, long_one.id)[:4] == [*flow, "task-revoked"]

    by_type = {(e.task_id, e.type): e for e in events}
    succeeded = by_type[(ok.id, "task-succeeded")]
    assert succeeded.result == 42 and succeeded.hostname == NODE and succeeded.runtime is not None
    assert by_type[(ok.id, "task-received")].args == [20, 22]
    assert "boom" in (by_type[(failed.id, "task-failed")].exception or "")
    stops = [e for e in events if e.task_id == long_one.id and e.type == "task-revoked"]
    stops.sort(key=lambda e: e.timestamp)
    assert stops[0].extra["terminated"] is True  # then skipped when its message came back
    assert by_type[(retried.id, "task-succeeded")].retries == 1

    worker_events = [e for e in events if e.is_worker and e.hostname == NODE]
    assert worker_events[0].type == "worker-online" and worker_events[-1].type == "worker-offline"
    online = worker_events[0]
    assert online.pool_size == 2 and online.queues == ("celeriac",) and online.sw_ident


def test_heartbeats_say_who_is_online_and_a_receiver_resumes(
    cluster: Cluster, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "monitor.position"
    first = EventReceiver(cluster.client, after=OLDEST, checkpoint=checkpoint)
    cluster.start(NODE, "-P", "threads", "-c", "2")
    results = [cluster.send("add", i, i) for i in range(6)]
    assert [r.get(timeout=20) for r in results] == [2 * i for i in range(6)]

    seen: list[Event] = []
    for event in first.iter(timeout=5):
        seen.append(event)
        if sum(e.type == "task-succeeded" for e in seen) == 3:
            break  # the monitor stops here, and later starts again
    first.close()

    second = EventReceiver(cluster.client, checkpoint=checkpoint)
    rest: list[Event] = []
    wait_until(
        lambda: (
            rest.extend(second.poll(timeout=0.2))
            or sum(e.type == "task-succeeded" for e in rest) >= 3
        ),
        20,
        "the other three",
    )
    second.close()
    positions = [e.position for e in seen + rest]
    assert len(positions) == len(set(positions))  # nothing twice
    succeeded = {e.task_id for e in seen + rest if e.type == "task-succeeded"}
    assert succeeded == {r.id for r in results}

    workers = {
        w.hostname: w
        for w in __import__("celeriac.events", fromlist=["x"]).read_presence(cluster.client.broker)
    }
    assert workers[NODE].alive and workers[NODE].get("pool_size") == 2
    assert workers[NODE].get("processed") is not None
