"""Broker implementations, chosen by URL scheme; each imports its client lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exceptions import ConfigurationError
from ..urls import load_object, redact, scheme_of
from .base import Broker, DeadLetter, QueueStats

if TYPE_CHECKING:
    from ..config import Settings

_SCHEMES = {
    "memory": "celeriac.brokers.memory:MemoryBroker",
    "sqlite": "celeriac.sqlite.broker:SQLiteBroker",
    "redis": "celeriac.redis.broker:RedisBroker",
    "rediss": "celeriac.redis.broker:RedisBroker",
    "redis+sentinel": "celeriac.redis.broker:RedisBroker",
    "redis+cluster": "celeriac.redis.broker:RedisBroker",
    "amqp": "celeriac.rabbitmq.broker:AMQPBroker",
    "amqps": "celeriac.rabbitmq.broker:AMQPBroker",
}


def connect_broker(url: str, conf: Settings) -> Broker:
    """A new connection to the broker at ``url``."""
    spec = _SCHEMES.get(scheme_of(url))
    if spec is None:
        raise ConfigurationError(
            f"broker URL {redact(url)!r} has an unknown scheme: use one of "
            f"{', '.join(s + '://' for s in _SCHEMES)}"
        )
    options = dict(conf.broker_transport_options or {})
    if spec.endswith(":AMQPBroker") and conf.task_queues and "task_queues" not in options:
        options["task_queues"] = conf.task_queues  # exchanges and routing keys per queue
    cls = load_object(spec)
    return cls(  # type: ignore[no-any-return]
        url,
        lease_seconds=float(options.pop("visibility_timeout", 30.0)),
        max_deliveries=int(options.pop("max_deliveries", 5)),
        **options,
    )


__all__ = ["Broker", "DeadLetter", "QueueStats", "connect_broker"]
