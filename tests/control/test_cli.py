"""``status``, ``inspect``, ``control``, ``events``, ``queues`` and ``dead-letters``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest
from click.testing import CliRunner, Result

from celeriac.brokers.memory import reset_memory_brokers
from celeriac.cli.main import cli
from celeriac.control import WorkerRemote
from celeriac.events import dispatcher_for
from celeriac.message import Message
from tests.control.cli_app import app
from tests.control.conftest import FakeWorker

APP = ["-A", "tests.control.cli_app:app"]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, [*APP, *args])


@pytest.fixture(autouse=True)
def fresh_store() -> Iterator[None]:
    # Connections hold their store: drop them with it, the event thread's included.
    dispatcher_for(app).close()
    reset_memory_brokers()
    app.close()
    yield
    dispatcher_for(app).close()


@pytest.fixture
def cluster() -> Iterator[list[FakeWorker]]:
    fakes = [FakeWorker("w1@host", consuming=["celeriac", "images"]), FakeWorker("w2@host")]
    remotes = [WorkerRemote(app, fake) for fake in fakes]
    for remote in remotes:
        remote.start()
    yield fakes
    for remote in remotes:
        remote.stop()


def test_status_lists_live_workers_with_queues_and_load(cluster: list[FakeWorker]) -> None:
    out = run("status")
    assert out.exit_code == 0, out.output
    assert "w1@host" in out.output and "online" in out.output and "celeriac,images" in out.output
    assert "2 workers online" in out.output
    rows = orjson.loads(run("status", "--json").output)
    assert {r["hostname"] for r in rows} == {"w1@host", "w2@host"}
    assert all(r["alive"] and r["pool_size"] >= 2 for r in rows)


def test_status_and_inspect_fail_clearly_when_nobody_is_there() -> None:
    out = run("status")
    assert out.exit_code == 69 and "no worker online on broker memory://control-cli" in (out.output)
    out = run("inspect", "ping", "--timeout", "0.2")
    assert out.exit_code == 69
    assert "no worker answered within 0.2s on broker memory://control-cli" in out.output
    out = run("control", "pool_grow", "2", "-d", "ghost@host", "--timeout", "0.2")
    assert out.exit_code == 69 and "ghost@host did not answer within 0.2s" in out.output


def test_inspect_prints_each_worker_and_json(cluster: list[FakeWorker]) -> None:
    cluster[0].running.append(
        {
            "id": "abc",
            "name": "cli.add",
            "args": [1, 2],
            "kwargs": {},
            "time_start": time.time(),
            "worker_pid": 4242,
        }
    )
    cluster[0].running.append(
        {"id": "big", "name": "cli.add", "args": "[1,2,3...", "kwargs": {}, "truncated": ["args"]}
    )  # arguments cut beyond event_args_max_size
    out = run("inspect", "active", "-d", "w1@host")
    assert out.exit_code == 0, out.output
    assert "-> w1@host: OK" in out.output and "cli.add[abc] [1,2] {} pid 4242" in out.output
    assert 'cli.add[big] "[1,2,3..." {} (truncated: args)' in out.output
    assert "w2@host" not in out.output
    replies = orjson.loads(run("inspect", "registered", "--json").output)
    assert replies == {"w1@host": ["cli.add"], "w2@host": ["cli.add"]}
    assert run("inspect", "nonsense").exit_code == 2
    scheduled = run("inspect", "scheduled").output  # empty: they wait in the broker
    assert "celeriac queues show QUEUE --delayed" in scheduled


def test_control_commands(cluster: list[FakeWorker]) -> None:
    out = run("control", "pool_grow", "2", "-d", "w2@host")
    assert out.exit_code == 0 and "-> w2@host: OK pool grown to 4" in out.output
    assert run("control", "rate_limit", "cli.add", "10/m").exit_code == 0
    assert app.tasks["cli.add"].rate_limit == "10/m"
    bad = run("control", "rate_limit", "cli.add", "lots")
    assert bad.exit_code == 2 and "not understood" in bad.output
    assert run("control", "time_limit", "cli.add", "5", "10").exit_code == 0
    assert (app.tasks["cli.add"].soft_time_limit, app.tasks["cli.add"].time_limit) == (5, 10)
    out = run("control", "cancel_consumer", "nope", "-d", "w1@host")
    assert out.exit_code == 1 and "ERROR not consuming from nope" in out.output
    assert run("control", "add_consumer", "video", "-d", "w1@host").exit_code == 0
    assert "video" in cluster[0].consuming
    out = run("control", "shutdown", "-d", "w2@host", "--json")
    assert orjson.loads(out.output) == {"w2@host": {"ok": "shutting down"}}
    assert cluster[1].stopped.wait(5)


def test_control_revoke_terminates_and_is_durable(cluster: list[FakeWorker]) -> None:
    cluster[1].running.append({"id": "t-9", "name": "cli.add"})
    out = run("control", "revoke", "t-9", "--terminate", "--signal", "SIGKILL", "--json")
    replies = orjson.loads(out.output)
    assert replies["w2@host"]["terminated"] == ["t-9"] and replies["w1@host"]["terminated"] == []
    assert app.broker.revocations.revoked(["t-9"]) == {"t-9"}
    assert app.backend.get("t-9").state == "REVOKED"


def test_pause_and_resume_a_queue() -> None:
    assert "paused" in run("control", "pause", "images").output
    rows = orjson.loads(run("queues", "--json").output)
    assert next(r for r in rows if r["queue"] == "images")["paused"] is True
    assert "resumed" in run("control", "resume", "images").output
    assert "was not paused" in run("control", "resume", "images").output


def test_events_tail_filters_and_json(cluster: list[FakeWorker]) -> None:
    dispatcher = dispatcher_for(app)
    dispatcher.send(
        "task-succeeded", uuid="a", name="cli.add", hostname="w1@host", result=3, runtime=0.5
    )
    dispatcher.send(
        "task-failed", uuid="b", name="cli.other", hostname="w2@host", exception="ValueError('x')"
    )
    assert dispatcher.flush()
    out = run("events", "--from-start", "--timeout", "0.5", "--state", "success")
    assert out.exit_code == 0, out.output
    assert "task-succeeded  cli.add[a]  w1@host  runtime=0.500s result=3" in out.output
    assert "cli.other" not in out.output and "worker-heartbeat" not in out.output
    out = run(
        "events",
        "--from-start",
        "--timeout",
        "0.5",
        "--worker",
        "w2@*",
        "--json",
        "--type",
        "task-failed",
    )
    [line] = out.output.splitlines()
    assert orjson.loads(line)["uuid"] == "b" and orjson.loads(line)["position"]
    out = run("events", "--from-start", "--limit", "1", "--task", "cli.*")
    assert len(out.output.splitlines()) == 1


def test_queues_show_every_queue_consumed_or_not(cluster: list[FakeWorker]) -> None:
    app.send_task("cli.add", [1, 2], queue="orphans", priority=9)
    app.send_task("cli.add", [1, 2], queue="orphans", priority=2)
    app.send_task("cli.add", [1, 2], queue="orphans", countdown=60)
    rows = {r["queue"]: r for r in orjson.loads(run("queues", "--json").output)}
    assert rows["orphans"]["waiting"] == 2 and rows["orphans"]["delayed"] == 1
    assert rows["orphans"]["by_priority"] == {"9": 1, "2": 1}
    assert rows["orphans"]["consumers"] == [] and rows["orphans"]["oldest_age"] >= 0
    assert rows["images"]["consumers"] == ["w1@host"] and rows["images"]["waiting"] == 0
    out = run("queues")
    assert out.exit_code == 0 and "orphans" in out.output and "9:1 2:1" in out.output


def test_dead_letters_list_requeue_purge() -> None:
    broker = app.broker
    for i in range(3):
        message = Message(id=f"m{i}", task="cli.add", args=(i, i), queue="q")
        broker.publish([message.envelope(app.codec)])
    for delivery in broker.fetch(["q"], "c", 3, 1.0):
        broker.dead_letter("c", delivery.tag, "poisoned for the test")
    listed = orjson.loads(run("dead-letters", "list", "--json").output)
    assert [(d["id"], d["task"], d["args"]) for d in listed] == [
        ("m0", "cli.add", [0, 0]),
        ("m1", "cli.add", [1, 1]),
        ("m2", "cli.add", [2, 2]),
    ]
    assert "poisoned for the test" in run("dead-letters", "list", "-Q", "q").output
    out = run("dead-letters", "requeue", "-Q", "q", "--id", "m1")
    assert "1 dead letter requeued" in out.output and broker.stats("q").total_waiting == 1
    assert "2 dead letters purged" in run("dead-letters", "purge", "-f").output
    assert broker.stats("q").dead == 0
