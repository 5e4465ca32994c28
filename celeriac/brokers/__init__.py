"""Broker implementations, chosen by URL scheme; each imports its client lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError
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


def scheme_of(url: str) -> str:
    return url.partition("://")[0].lower()


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}" if ":" in creds else url


def _load(spec: str) -> Any:
    import importlib

    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def _spec(url: str) -> str:
    spec = _SCHEMES.get(scheme_of(url))
    if spec is None:
        raise ConfigurationError(
            f"broker URL {redact(url)!r} has an unknown scheme: use one of "
            f"{', '.join(s + '://' for s in _SCHEMES)}"
        )
    return spec


def broker_class(url: str) -> type[Broker]:
    """The class of the broker at ``url``, to read what it declares without connecting."""
    return _load(_spec(url))  # type: ignore[no-any-return]


def connect_broker(url: str, conf: Settings) -> Broker:
    """A new connection to the broker at ``url``."""
    spec = _spec(url)
    options = dict(conf.broker_transport_options or {})
    if spec.endswith(":AMQPBroker") and conf.task_queues and "task_queues" not in options:
        options["task_queues"] = conf.task_queues  # exchanges and routing keys per queue
    cls = _load(spec)
    return cls(  # type: ignore[no-any-return]
        url,
        lease_seconds=float(options.pop("visibility_timeout", 30.0)),
        max_deliveries=int(options.pop("max_deliveries", 5)),
        **options,
    )


__all__ = [
    "Broker",
    "DeadLetter",
    "QueueStats",
    "broker_class",
    "connect_broker",
    "redact",
    "scheme_of",
]
