"""Remote control end to end in one process: commands out, replies back, effects applied."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from celeriac import Celeriac
from celeriac.control import (
    CONTROL_STREAM,
    Command,
    ControlListener,
    PausedQueues,
    follow_control,
)
from celeriac.control.listener import handled_position
from celeriac.events import dispatcher_for
from celeriac.exceptions import ConfigurationError
from celeriac.middleware.revocation import Revocation
from tests.control.conftest import FakeWorker


def test_ping_collects_every_live_worker_without_waiting_the_timeout(
    app: Celeriac, workers: list[FakeWorker]
) -> None:
    started = time.monotonic()
    replies = app.control.ping(timeout=5.0)
    elapsed = time.monotonic() - started
    assert sorted(replies, key=str) == [{"w1@host": {"ok": "pong"}}, {"w2@host": {"ok": "pong"}}]
    assert elapsed < 2.0, f"waited {elapsed:.2f}s although every live worker answered"


def test_destination_names_the_workers_that_answer(
    app: Celeriac, workers: list[FakeWorker]
) -> None:
    assert app.control.ping(destination=["w2@host"]) == [{"w2@host": {"ok": "pong"}}]
    assert app.control.pool_grow(3, destination="w1@host", reply=True) == [
        {"w1@host": {"ok": "pool grown to 5", "pool_size": 5}}
    ]
    assert (workers[0].size, workers[1].size) == (5, 4)


def test_nobody_answers_within_the_timeout(app: Celeriac) -> None:
    started = time.monotonic()
    assert app.control.ping(timeout=0.3) == []
    assert app.control.inspect(timeout=0.3).active() is None
    assert 0.3 <= time.monotonic() - started < 2.0


def test_inspect_queries(app: Celeriac, workers: list[FakeWorker]) -> None:
    workers[0].running.append({"id": "t-1", "name": "t.add", "args": [1, 2]})
    inspect = app.control.inspect(destination=["w1@host"])
    assert inspect.active() == {"w1@host": [{"id": "t-1", "name": "t.add", "args": [1, 2]}]}
    assert inspect.registered() == {"w1@host": ["t.add"]}
    assert inspect.scheduled() == {"w1@host": []}
    stats = (inspect.stats() or {})["w1@host"]
    assert stats["total"] == 3 and stats["pool"]["max-concurrency"] == 2 and stats["active"] == 1
    assert inspect.active_queues() == {"w1@host": [{"name": "celeriac", "paused": False}]}
    conf = (inspect.conf() or {})["w1@host"]
    assert conf["broker_url"] == app.broker_url and conf["task_default_queue"] == "celeriac"


def test_conf_hides_secrets(app: Celeriac, workers: list[FakeWorker]) -> None:
    app.conf.update(security_key="s3cret", result_backend="redis://u:pw@db:6379/1")
    conf = (app.control.inspect(destination="w1@host").conf() or {})["w1@host"]
    assert conf["security_key"] == "***" and conf["result_backend"] == "redis://u:***@db:6379/1"


def test_revoke_reaches_workers_and_terminate_records_revoked(
    app: Celeriac, workers: list[FakeWorker]
) -> None:
    result = app.send_task("t.add", [1, 2])
    workers[0].running.append({"id": result.id, "name": "t.add"})
    replies = app.control.on_revoke([result.id], terminate=True, signal="SIGKILL", reply=True)
    by_host = {h: v for r in replies for h, v in r.items()}
    assert by_host["w1@host"]["terminated"] == [result.id]
    assert by_host["w2@host"]["terminated"] == []
    assert ("terminate", (result.id, "SIGKILL")) in workers[0].calls
    assert result.state == "REVOKED"
    revocation = next(m for m in app.middleware if isinstance(m, Revocation))
    assert result.id in revocation.revoked
    inspect = app.control.inspect(destination=["w2@host"])
    assert inspect.revoked() == {"w2@host": [result.id]}


def test_async_result_revoke_goes_through_control(app: Celeriac, workers: list[FakeWorker]) -> None:
    result = app.send_task("t.add", [1, 2])
    workers[1].running.append({"id": result.id, "name": "t.add"})
    result.revoke(terminate=True)
    assert app.broker.revocations.revoked([result.id]) == {result.id}  # durable
    deadline = time.monotonic() + 5
    while ("terminate", (result.id, "SIGTERM")) not in workers[1].calls:
        assert time.monotonic() < deadline, workers[1].calls
        time.sleep(0.02)


def test_rate_limit_and_time_limit_change_the_task(
    app: Celeriac, workers: list[FakeWorker]
) -> None:
    add = app.tasks["t.add"]
    reply = app.control.rate_limit("t.add", "10/m", destination=["w1@host"], reply=True)
    assert reply == [{"w1@host": {"ok": "rate limit of t.add set to 10/m"}}]
    assert add.rate_limit == "10/m"
    app.control.time_limit("t.add", soft=5, hard=10, destination=["w1@host"], reply=True)
    assert (add.soft_time_limit, add.time_limit) == (5, 10)
    with pytest.raises(ConfigurationError):
        app.control.rate_limit("t.add", "ten per minute")
    [unknown] = app.control.rate_limit("t.nope", "1/s", destination=["w1@host"], reply=True)
    assert "unknown task 't.nope'" in unknown["w1@host"]["error"]


def test_consumers_and_pool(app: Celeriac, workers: list[FakeWorker]) -> None:
    w1 = ["w1@host"]
    app.control.add_consumer("images", destination=w1, reply=True)
    assert workers[0].consuming == ["celeriac", "images"]
    [reply] = app.control.cancel_consumer("nope", destination=w1, reply=True)
    assert reply["w1@host"] == {"error": "not consuming from nope"}
    app.control.cancel_consumer("celeriac", destination=w1, reply=True)
    assert workers[0].consuming == ["images"]
    [bad] = app.control.pool_shrink(0, destination=w1, reply=True)
    assert "n must be a whole number" in bad["w1@host"]["error"]
    app.control.pool_shrink(1, destination=w1, reply=True)
    assert workers[0].size == 1


def test_shutdown_replies_first_then_stops(app: Celeriac, workers: list[FakeWorker]) -> None:
    assert app.control.shutdown(destination=["w2@host"], reply=True) == [
        {"w2@host": {"ok": "shutting down"}}
    ]
    assert workers[1].stopped.wait(5) and not workers[0].stopped.is_set()


def test_unknown_commands_and_bad_arguments_are_answered_with_errors(
    app: Celeriac, workers: list[FakeWorker]
) -> None:
    [reply] = app.control.broadcast("frobnicate", destination=["w1@host"], reply=True)
    assert reply["w1@host"]["error"].startswith("unknown command 'frobnicate'")
    [reply] = app.control.broadcast("pool_grow", {"bogus": 1}, destination=["w1@host"], reply=True)
    assert "bad arguments for pool_grow" in reply["w1@host"]["error"]


def test_stale_commands_are_ignored(app: Celeriac, workers: list[FakeWorker]) -> None:
    stale = Command("shutdown", sent_at=time.time() - 120, ttl=60)
    app.broker.streams.add(CONTROL_STREAM, [stale.encode()])
    assert app.control.ping(destination=["w1@host"]) == [{"w1@host": {"ok": "pong"}}]
    assert not workers[0].stopped.is_set()  # the ping after it was handled, not the shutdown


def test_a_follower_applies_task_changes_but_never_replies(app: Celeriac) -> None:
    follower = follow_control(app, "w9@host")
    try:
        assert app.control.ping(destination=["w9@host"], timeout=0.3) == []
        app.control.rate_limit("t.add", "5/s", destination=["w9@host"])
        app.control.on_revoke(["abc"], terminate=False, signal="SIGTERM")
        deadline = time.monotonic() + 5
        revocation = next(m for m in app.middleware if isinstance(m, Revocation))
        while app.tasks["t.add"].rate_limit != "5/s" or "abc" not in revocation.revoked:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        follower.stop()


def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_pause_is_a_durable_flag_consumers_see_within_a_refresh(app: Celeriac) -> None:
    gate = PausedQueues(app.broker, refresh=0.05)
    assert gate.open_queues(["a", "b"]) == ["a", "b"]
    app.control.pause("a", by="ops")
    assert set(app.control.paused()) == {"a"} and app.control.paused()["a"]["by"] == "ops"
    _until(lambda: gate.open_queues(["a", "b"]) == ["b"], seconds=1.0)
    assert app.control.resume("a") and not app.control.resume("a")
    _until(lambda: gate.open_queues(["a", "b"]) == ["a", "b"], seconds=1.0)


def test_a_broker_without_streams_is_a_clear_error(
    app: Celeriac, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celeriac.brokers.memory import MemoryBroker
    from celeriac.events import EventReceiver, StreamsUnavailable

    class NoStreams(MemoryBroker):
        def __init__(self, url: str) -> None:
            super().__init__(url)
            self.streams = None

    monkeypatch.setattr(app, "connect_broker", lambda: NoStreams(app.broker_url))
    app._connections().broker = NoStreams(app.broker_url)
    with pytest.raises(StreamsUnavailable, match="keeps no streams, so remote control"):
        app.control.ping()
    with pytest.raises(StreamsUnavailable, match="so reading events is not available"):
        EventReceiver(app)
    app.control.revoke("t-1")  # the durable revocation still holds
    assert app.broker.revocations.revoked(["t-1"]) == {"t-1"}
    listener = follow_control(app, "w@h")  # a worker's listener ends quietly
    listener.stop(timeout=5)
    assert listener._thread is not None and not listener._thread.is_alive()


def test_registered_describes_limits_as_celery_does(
    app: Celeriac, workers: list[FakeWorker]
) -> None:
    app.control.rate_limit("t.add", "10/m", destination=["w1@host"], reply=True)
    inspect = app.control.inspect(destination=["w1@host"])
    assert inspect.registered("rate_limit", "time_limit") == {
        "w1@host": ["t.add [rate_limit=10/m]"]
    }


def test_the_worker_records_how_far_it_has_handled_the_control_stream(
    app: Celeriac, workers: list[FakeWorker]
) -> None:
    before = handled_position("w1@host")
    assert before is not None  # noted when the listener started
    app.control.pool_grow(1, destination=["w1@host"], reply=True)
    grown_at = app.broker.streams.last(CONTROL_STREAM)
    _until(lambda: handled_position("w1@host") == grown_at)


def test_a_follower_given_a_position_applies_what_was_sent_since(app: Celeriac) -> None:
    # Given a child forked when its supervisor had handled the stream up to here
    forked_at = app.broker.streams.last(CONTROL_STREAM)
    child_app = Celeriac("child", broker=app.broker_url, set_as_current=False)

    @child_app.task(name="t.add")
    def add(a: int, b: int) -> int:
        return a + b

    # When commands are sent before the child's follower starts reading
    app.control.rate_limit("t.add", "7/m", destination=["w1@host"])
    app.control.broadcast("revoke", {"task_ids": ["sent-while-booting"]})
    follower = ControlListener(child_app, "w1@host", after=forked_at)
    follower.start()
    try:
        # Expect the child to apply them all the same
        revocation = next(m for m in child_app.middleware if isinstance(m, Revocation))
        _until(
            lambda: (
                child_app.tasks["t.add"].rate_limit == "7/m"
                and "sent-while-booting" in revocation.revoked
            )
        )
    finally:
        follower.stop()
        dispatcher_for(child_app).close()
