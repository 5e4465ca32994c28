"""Result backends, chosen by URL scheme; each imports its client lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..brokers import broker_class, check_server_url
from ..exceptions import ConfigurationError
from ..urls import load_object, redact, scheme_of
from .base import Backend, TaskMeta

if TYPE_CHECKING:
    from ..config import Settings
    from ..serialization import Codec

_SCHEMES = {
    "memory": "celeriac.backends.memory:MemoryBackend",
    "sqlite": "celeriac.sqlite.backend:SQLiteBackend",
    "redis": "celeriac.redis.backend:RedisBackend",
    "rediss": "celeriac.redis.backend:RedisBackend",
    "redis+sentinel": "celeriac.redis.backend:RedisBackend",
    "redis+cluster": "celeriac.redis.backend:RedisBackend",
    "sentinel": "celeriac.redis.backend:RedisBackend",
    "django-db": "celeriac.contrib.django.backend:DjangoBackend",
    "disabled": "celeriac.backends.disabled:DisabledBackend",
    "rpc": "celeriac.rabbitmq.rpc:RPCBackend",
}
#: Backends that send results back over the broker to the client that sent the task
#: (Celery's rpc://): they need a broker that carries replies (RabbitMQ).
_OVER_THE_BROKER = frozenset({"rpc"})
#: ``db+<SQLAlchemy URL>``, as in Celery: any scheme with this prefix
SQL_PREFIX, SQL_SPEC = "db+", "celeriac.sql.backend:SQLBackend"


def default_backend_url(broker_url: str) -> str:
    """Where results go when no ``result_backend`` is set: the broker's own store when
    it keeps results too (memory, SQLite, Redis), else nowhere (``disabled://``)."""
    if scheme_of(broker_url) in _SCHEMES:
        return broker_url
    return "disabled://"


def _spec(url: str) -> str:
    scheme = scheme_of(url)
    spec = _SCHEMES.get(scheme) or (SQL_SPEC if scheme.startswith(SQL_PREFIX) else None)
    if spec is None:
        raise ConfigurationError(
            f"result_backend {redact(url)!r} has an unknown scheme: use one of "
            f"{', '.join(s + '://' for s in _SCHEMES)} or {SQL_PREFIX}<SQLAlchemy URL> "
            f"({SQL_PREFIX}postgresql://user@host/db)"
        )
    return spec


def check_backend_url(url: str) -> None:
    """Refuse, naming the part, a result backend URL that cannot work."""
    _spec(url)
    check_server_url(url, "result_backend")


def check_backend_with_broker(backend_url: str | None, broker_url: str | None) -> None:
    """Refuse rpc:// results with a broker that cannot carry them back (loads the
    broker's class only for rpc://)."""
    if not backend_url or scheme_of(backend_url) not in _OVER_THE_BROKER:
        return
    if broker_url is None or not broker_class(broker_url).carries_replies:
        raise ConfigurationError(rpc_needs_rabbitmq(broker_url))


def rpc_needs_rabbitmq(broker_url: str | None) -> str:
    """Why rpc:// results cannot travel over ``broker_url``."""
    broker = redact(broker_url) if broker_url else "the embedded SQLite broker (no broker_url)"
    return (
        f"result_backend rpc:// sends each result back to its client over the broker, which "
        f"must be RabbitMQ (amqp://), not {broker}: keep results in redis://, db+... or "
        "sqlite:///results.sqlite3 instead"
    )


#: The message header naming the queue a ``replies_to_sender`` backend sends results to.
REPLY_TO = "reply_to"


def replies_to_sender(url: str) -> bool:
    """Whether the backend at ``url`` sends results back to the sending client (rpc://),
    known from the registry without importing the backend."""
    return scheme_of(url) in _OVER_THE_BROKER


def connect_backend(url: str, conf: Settings, codec: Codec) -> Backend:
    """A new connection to the result backend at ``url``."""
    cls = load_object(_spec(url))
    options = cls.options_from(conf)
    return cls(codec, url, expires=float(conf.result_expires), **options)  # type: ignore[no-any-return]


__all__ = [
    "REPLY_TO",
    "Backend",
    "TaskMeta",
    "check_backend_url",
    "check_backend_with_broker",
    "connect_backend",
    "default_backend_url",
    "replies_to_sender",
    "rpc_needs_rabbitmq",
]
