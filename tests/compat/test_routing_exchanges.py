"""Routes by exchange and routing key: real bindings on RabbitMQ, a clear refusal elsewhere.

Given Celery's routing example (tests/compat/media_app.py: a topic exchange, two queues
bound by pattern, routes naming the exchange and a routing key), expect on RabbitMQ each
task to reach the worker consuming the queue its key is bound to, through bindings
RabbitMQ holds; on a broker without exchanges, or with a key no queue is bound to,
expect an error that says what to do, before anything is sent: never the default queue.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pika
import pytest

from celeriac import Celeriac
from celeriac.exceptions import ConfigurationError
from tests.compat.helpers import project_module
from tests.e2e.workers import StartWorker
from tests.rabbitmq.conftest import HOST, PORT, rabbitmq, rabbitmqctl, vhost

__all__ = ["rabbitmq", "vhost"]  # the fixtures


def _names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        "MEDIA_IMAGES_QUEUE": f"images-{tag}",
        "MEDIA_VIDEOS_QUEUE": f"videos-{tag}",
        "MEDIA_EXCHANGE": f"media-{tag}",
    }


def test_exchange_routes_deliver_through_rabbitmq_bindings(
    vhost: str, start_worker: StartWorker, tmp_path: Path
) -> None:
    names = _names()
    broker = f"amqp://guest@{HOST}:{PORT}/{vhost}"
    backend = f"sqlite:///{tmp_path}/results.sqlite3"
    env = {"CELERIAC_BROKER_URL": broker, "CELERIAC_RESULT_BACKEND": backend, **names}
    os.environ.update(names)
    try:
        with project_module("media_app", tmp_path) as module:
            module.app.conf.update(broker_url=broker, result_backend=backend)
            images = start_worker(
                "media_app", "-P", "threads", "-Q", names["MEDIA_IMAGES_QUEUE"], env=env
            )
            videos = start_worker(
                "media_app", "-P", "threads", "-Q", names["MEDIA_VIDEOS_QUEUE"], env=env
            )
            # When each task is sent with only its route to say where
            resized = module.resize.delay(640)
            transcoded = module.transcode.delay("h264")
            # Expect each run by the worker of the queue its routing key is bound to
            assert resized.get(timeout=20) == "resized to 640"
            assert transcoded.get(timeout=20) == "transcoded to h264"
            assert resized.app.backend.get(resized.id).queue == names["MEDIA_IMAGES_QUEUE"]
            assert transcoded.app.backend.get(transcoded.id).queue == names["MEDIA_VIDEOS_QUEUE"]
            assert images.stop() == 0 and videos.stop() == 0
            module.app.close()
        # and the bindings are RabbitMQ's own: the exchange is bound to each queue by pattern
        bindings = rabbitmqctl(
            "list_bindings", "-p", vhost, "source_name", "destination_name", "routing_key"
        )
        assert (
            f"{names['MEDIA_EXCHANGE']}\t{names['MEDIA_IMAGES_QUEUE']}\tmedia.images.#" in bindings
        )
        assert (
            f"{names['MEDIA_EXCHANGE']}\t{names['MEDIA_VIDEOS_QUEUE']}\tmedia.videos.#" in bindings
        )
    finally:
        for name in names:
            os.environ.pop(name, None)
        _delete(vhost, names)


def _delete(vhost: str, names: dict[str, str]) -> None:
    params = pika.ConnectionParameters(HOST, PORT, vhost, pika.PlainCredentials("guest", "guest"))
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        for queue in (names["MEDIA_IMAGES_QUEUE"], names["MEDIA_VIDEOS_QUEUE"]):
            channel.queue_delete(queue)
            channel.queue_delete(f"celeriac.dead.{queue}")
        channel.exchange_delete(names["MEDIA_EXCHANGE"])
    finally:
        connection.close()


@pytest.mark.parametrize("broker", ["redis://localhost:6379/0", "memory://", "sqlite:///x.db"])
def test_an_exchange_route_is_refused_where_there_are_no_exchanges(
    broker: str, tmp_path: Path
) -> None:
    with project_module("media_app", tmp_path) as module:
        module.app.conf.update(broker_url=broker)
        # at a worker's start (finalize) and at the first send, before anything is published
        with pytest.raises(ConfigurationError, match="no exchanges.*name the queue"):
            module.app.finalize()
        with pytest.raises(ConfigurationError, match="no exchanges"):
            module.resize.delay(640)


def test_a_routing_key_no_queue_is_bound_to_is_refused_not_sent_to_the_default() -> None:
    app = Celeriac(
        "t",
        broker=f"amqp://guest@{HOST}:{PORT}//",
        set_as_current=False,
        task_queues={
            "images": {
                "exchange": "media",
                "exchange_type": "topic",
                "routing_key": "media.images.#",
            }
        },
        task_routes={"proj.audio": {"exchange": "media", "routing_key": "media.audio"}},
    )
    with pytest.raises(ConfigurationError, match="no queue in task_queues is bound to it"):
        app.router  # noqa: B018
    both = Celeriac(
        "t",
        broker="amqp://",
        set_as_current=False,
        task_queues={
            "a": {"exchange": "fan", "exchange_type": "fanout"},
            "b": {"exchange": "fan", "exchange_type": "fanout"},
        },
        task_routes={"proj.x": {"exchange": "fan"}},
    )
    with pytest.raises(ConfigurationError, match=r"several queues \['a', 'b'\]"):
        both.router  # noqa: B018


def test_a_route_with_options_it_cannot_route_by_is_refused() -> None:
    app = Celeriac("t", broker="memory://", set_as_current=False)
    app.conf.task_routes = {"proj.x": {"queue": "q", "delivery_mode": 2}}
    with pytest.raises(ConfigurationError, match=r"\['delivery_mode'\] cannot be routed by"):
        app.router  # noqa: B018
