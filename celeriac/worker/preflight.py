"""What a worker checks before it says "ready": settings it can never work with.

A worker that cannot work as configured (pickle without ``security_key``, a
broker that refuses its credentials, a SQLite file it cannot create) stops at
once with one line naming the setting and a non-zero exit status, instead of
announcing "ready" and failing for ever. A broker that cannot be reached is
an outage, not a mistake: the worker starts and waits for it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..exceptions import BrokerError, ConfigurationError

if TYPE_CHECKING:
    from ..app import Celeriac

logger = logging.getLogger("celeriac.worker")


def check_settings(app: Celeriac) -> None:
    """Raise :class:`ConfigurationError` naming the setting a worker cannot work with."""
    try:
        app.codec.check()
    except ConfigurationError as exc:
        raise ConfigurationError(f"task_serializer / accept_content / security_key: {exc}") from exc
    _check_broker(app)
    try:
        app.connect_backend().close()
    except ConfigurationError as exc:
        raise ConfigurationError(f"result_backend: {exc}") from exc


def _check_broker(app: Celeriac) -> None:
    """Connect once: a refusal (credentials, access, a file that cannot be) is fatal
    (:class:`ConfigurationError`, which :class:`BrokerRefused` is); any other broker
    trouble is the broker's, which the worker waits out."""
    broker = None
    try:
        broker = app.connect_broker()
        broker.queues()  # one round trip: credentials, permissions, the file, the vhost
    except ConfigurationError as exc:
        raise ConfigurationError(f"broker_url: {exc}") from exc
    except BrokerError as exc:
        logger.warning("broker not ready at start, the worker waits for it: %s", exc)
    finally:
        if broker is not None:
            broker.close()


__all__ = ["check_settings"]
