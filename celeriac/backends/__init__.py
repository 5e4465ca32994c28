"""Result backends, chosen by URL scheme; each imports its client lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..brokers import _load, redact, scheme_of
from ..exceptions import ConfigurationError
from .base import Backend, TaskMeta

if TYPE_CHECKING:
    from ..config import Settings
    from ..serialization import Codec

_SCHEMES = {
    "memory": "celeriac.backends.memory:MemoryBackend",
    "sqlite": "celeriac.backends.sqlite:SQLiteBackend",
    "redis": "celeriac.backends.redis:RedisBackend",
    "rediss": "celeriac.backends.redis:RedisBackend",
    "redis+sentinel": "celeriac.backends.redis:RedisBackend",
    "redis+cluster": "celeriac.backends.redis:RedisBackend",
    "django-db": "celeriac.contrib.django.backend:DjangoBackend",
    "disabled": "celeriac.backends.disabled:DisabledBackend",
}


def connect_backend(url: str, conf: Settings, codec: Codec) -> Backend:
    """A new connection to the result backend at ``url``."""
    spec = _SCHEMES.get(scheme_of(url))
    if spec is None:
        raise ConfigurationError(
            f"result_backend {redact(url)!r} has an unknown scheme: use one of "
            f"{', '.join(s + '://' for s in _SCHEMES)}"
        )
    return _load(spec)(codec, url, expires=float(conf.result_expires))  # type: ignore[no-any-return]


__all__ = ["Backend", "TaskMeta", "connect_backend"]
