"""Broker implementations, chosen by URL scheme; each imports its client lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exceptions import ConfigurationError
from ..urls import load_object, parse_url, redact, scheme_of
from .base import Broker, DeadLetter, QueueStats
from .composed import ComposedBroker

if TYPE_CHECKING:
    from ..config import Settings

_SCHEMES = {
    "memory": "celeriac.brokers.memory:MemoryBroker",
    "sqlite": "celeriac.sqlite.broker:SQLiteBroker",
    "redis": "celeriac.redis.broker:RedisBroker",
    "rediss": "celeriac.redis.broker:RedisBroker",
    "redis+sentinel": "celeriac.redis.broker:RedisBroker",
    "redis+cluster": "celeriac.redis.broker:RedisBroker",
    "sentinel": "celeriac.redis.broker:RedisBroker",  # kombu's sentinel://h1;sentinel://h2
    "amqp": "celeriac.rabbitmq.broker:AMQPBroker",
    "amqps": "celeriac.rabbitmq.broker:AMQPBroker",
    "pyamqp": "celeriac.rabbitmq.broker:AMQPBroker",  # Celery's names for amqp://
    "librabbitmq": "celeriac.rabbitmq.broker:AMQPBroker",
}
#: Schemes whose URL is one server's: host, port, user, password, and a vhost or db.
_SERVER_SCHEMES = {"amqp", "amqps", "pyamqp", "librabbitmq", "redis", "rediss"}


def _spec(url: str) -> str:
    spec = _SCHEMES.get(scheme_of(url))
    if spec is None:
        raise ConfigurationError(
            f"broker URL {redact(url)!r} has an unknown scheme: use one of "
            f"{', '.join(s + '://' for s in _SCHEMES)}"
        )
    return spec


def check_broker_url(url: str, setting: str = "broker_url") -> None:
    """Refuse, naming the part, a broker URL that cannot work: the scheme, the port, a
    Redis database that is not a number. Nothing is connected or imported."""
    _spec(url)
    check_server_url(url, setting)


def check_server_url(url: str, setting: str) -> None:
    """Read an amqp:// or redis:// URL as kombu does, refusing what cannot work."""
    scheme = scheme_of(url)
    if scheme not in _SERVER_SCHEMES:
        return
    parsed = parse_url(url, setting)
    if parsed.scheme.startswith("redis"):
        db = parsed.path.strip("/")
        if db and not db.isdigit():
            raise ConfigurationError(
                f"{setting} {redact(url)!r}: the database {db!r} (the URL's path) is not a "
                "number: use redis://host:6379/0"
            )


def broker_class(url: str) -> type[Broker]:
    """The class of the broker at ``url``, to read what it declares without connecting."""
    return load_object(_spec(url))  # type: ignore[no-any-return]


def connect_broker(url: str, conf: Settings) -> Broker:
    """A new connection to the broker at ``url``; with ``broker_capabilities_url`` set,
    one whose capabilities come from that store (see :mod:`celeriac.brokers.composed`)."""
    spec = _spec(url)
    options = dict(conf.broker_transport_options or {})
    if spec.endswith(":AMQPBroker") and conf.task_queues and "task_queues" not in options:
        options["task_queues"] = conf.task_queues  # exchanges and routing keys per queue
    if spec.endswith(":AMQPBroker") and not conf.broker_publish_confirm:
        options.setdefault("publish_confirm", False)  # fire and forget (docs/rabbitmq.md)
    lease_seconds = float(options.pop("visibility_timeout", 30.0))
    max_deliveries = int(options.pop("max_deliveries", 5))
    broker: Broker = load_object(spec)(
        url, lease_seconds=lease_seconds, max_deliveries=max_deliveries, **options
    )
    store_url = conf.broker_capabilities_url
    if not store_url:
        return broker
    store_class = load_object(_spec(store_url))
    if broker.spans_processes and not store_class.spans_processes:
        broker.close()
        raise ConfigurationError(
            f"broker_capabilities_url {redact(store_url)!r} lives inside one process, so "
            "other workers could not share it: use a Redis or SQLite URL"
        )
    # The store's own options go in its URL: the transport options are the broker's.
    store: Broker = store_class(
        store_url, lease_seconds=lease_seconds, max_deliveries=max_deliveries
    )
    return ComposedBroker(broker, store)


__all__ = [
    "Broker",
    "DeadLetter",
    "QueueStats",
    "broker_class",
    "check_broker_url",
    "check_server_url",
    "connect_broker",
]
