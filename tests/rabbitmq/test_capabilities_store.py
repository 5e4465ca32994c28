"""RabbitMQ with its capabilities in another store (``broker_capabilities_url``).

A real worker delivers through RabbitMQ and keeps remote control, presence,
paused queues, rate limits and revocations in a SQLite file.
"""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

from celeriac import Celeriac, states
from celeriac.brokers.composed import ComposedBroker
from celeriac.rabbitmq.broker import AMQPBroker
from celeriac.sqlite.broker import SQLiteBroker
from tests.e2e.workers import StartWorker, wait_until

APP = "amqp_caps_app"
APP_SOURCE = textwrap.dedent("""
    import os

    from celeriac import Celeriac

    app = Celeriac(
        "caps",
        broker=os.environ["AMQP_URL"],
        backend=os.environ["RESULTS_URL"],
        broker_capabilities_url=os.environ["CAPS_URL"],
        task_default_queue=os.environ["CAPS_QUEUE"],
        worker_concurrency=1,
    )


    @app.task
    def add(a, b):
        return a + b
""")


def test_a_worker_on_rabbitmq_uses_the_capabilities_of_a_sqlite_store(
    tmp_path: Path, amqp_url: str, queue: str, start_worker: StartWorker
) -> None:
    """Given a worker on RabbitMQ whose capabilities live in a SQLite file, expect it to
    answer remote control, show its presence and skip a task revoked before it ran, all
    through that file, while tasks travel through RabbitMQ."""
    (tmp_path / f"{APP}.py").write_text(APP_SOURCE)
    caps_url = f"sqlite:///{tmp_path}/caps.sqlite3"
    results_url = f"sqlite:///{tmp_path}/results.sqlite3"
    env = {"AMQP_URL": amqp_url, "RESULTS_URL": results_url, "CAPS_URL": caps_url}
    env["CAPS_QUEUE"] = queue
    client = Celeriac(
        "client",
        broker=amqp_url,
        backend=results_url,
        broker_capabilities_url=caps_url,
        task_default_queue=queue,
        set_as_current=False,
    )
    broker = client.broker
    assert isinstance(broker, ComposedBroker) and isinstance(broker.delivery, AMQPBroker)
    assert isinstance(broker.store, SQLiteBroker) and broker.streams is broker.store.streams

    worker = start_worker(APP, "-n", "caps@test", env=env)
    wait_until(lambda: client.control.ping(timeout=2.0), 30, "the worker to answer a ping")
    store = SQLiteBroker(caps_url)
    assert store.flags is not None and "worker:caps@test" in store.flags.read("worker:")
    assert store.streams is not None and store.streams.last("control") != "0"

    doomed = f"doomed-{uuid.uuid4().hex}"
    client.revoke([doomed])
    assert store.revocations is not None and store.revocations.revoked([doomed]) == {doomed}
    skipped = client.send_task(f"{APP}.add", [1, 1], task_id=doomed)
    assert client.send_task(f"{APP}.add", [2, 3]).get(timeout=30) == 5
    wait_until(lambda: skipped.state == states.REVOKED, 30, "the revoked task to be skipped")

    assert worker.stop() == 0
    store.close()
    client.close()
