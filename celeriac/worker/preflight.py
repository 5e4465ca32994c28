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

from ..exceptions import BrokerError, BrokerUnavailable, ConfigurationError

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
    except (ConfigurationError, BrokerError) as exc:
        raise ConfigurationError(f"result_backend: {exc}") from exc


def _check_broker(app: Celeriac) -> None:
    try:
        broker = app.connect_broker()
    except BrokerUnavailable as exc:
        logger.warning("broker unavailable at start, waiting for it: %s", exc)
        return
    except (ConfigurationError, BrokerError) as exc:
        raise ConfigurationError(f"broker_url: {exc}") from exc
    try:
        broker.queues()  # one round trip: credentials, permissions, the file, the vhost
    except BrokerUnavailable as exc:
        logger.warning("broker unavailable at start, waiting for it: %s", exc)
    except (ConfigurationError, BrokerError) as exc:
        raise ConfigurationError(f"broker_url: {exc}") from exc
    finally:
        broker.close()


__all__ = ["check_settings"]
