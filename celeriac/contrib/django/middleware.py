"""Database connection hygiene for tasks that use Django's ORM.

Django checks its connections at the start and end of each HTTP request; a
worker has no requests, so without this a worker that runs for days would keep
using a connection the database closed long ago (a restart, an idle timeout)
and fail its next task with "server closed the connection unexpectedly".

Around each task this does what Django does around a request:
``close_old_connections()`` closes connections that are broken or older than
``CONN_MAX_AGE`` and arms ``CONN_HEALTH_CHECKS``, so the next query reconnects
instead of failing. After a fork the child drops the connections it inherited
without a word to the server, so the parent's connections stay intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from ...middleware.base import Middleware

if TYPE_CHECKING:
    from ...app import Celeriac
    from ...worker.job import Job

logger = logging.getLogger("celeriac.django")


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def close_old_connections() -> None:
    """Django's ``close_old_connections()``, skipped inside a running event loop.

    Django refuses blocking database calls from a coroutine's thread; async code
    uses Django's async ORM, which manages its connections in its own threads.
    """
    if _in_event_loop():
        return
    from django.db import close_old_connections as django_close_old_connections

    django_close_old_connections()


class DjangoConnections(Middleware):
    """Checks database connections before each task, and closes stale ones after it."""

    def before_process(self, job: Job) -> None:
        if job.delivery is not None:  # an eager call belongs to the caller's request
            close_old_connections()

    def after_ack(self, job: Job) -> None:
        # After the result was stored: the task and its result share one connection.
        if job.delivery is not None:
            close_old_connections()

    def worker_stop(self, app: Celeriac, worker: Any) -> None:
        if not _in_event_loop():
            from django.db import connections

            connections.close_all()


def forget_inherited_connections() -> None:
    """In a forked child: drop the parent's connections without closing them for the parent.

    A normal close would tell the server goodbye over the socket the parent
    still uses. Closing our copy of the file descriptor first makes the
    driver's goodbye go nowhere.
    """
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        raw = conn.connection
        if raw is None:
            continue
        fileno = getattr(raw, "fileno", None)
        if callable(fileno):
            # (a driver without a socket of its own, SQLite, has nothing to close here)
            with contextlib.suppress(OSError, TypeError, ValueError):
                os.close(fileno())
        try:
            conn.close()
        except Exception:  # the driver may complain about the descriptor we closed
            conn.connection = None


def _after_fork_in_child() -> None:
    try:
        forget_inherited_connections()
    except Exception:  # a fork hook must never raise
        logger.exception("could not drop inherited database connections after fork")


_fork_hook_lock = threading.Lock()
_fork_hook_registered = False


def register_fork_hook() -> None:
    """Drop inherited database connections in every forked child (once per process)."""
    global _fork_hook_registered
    with _fork_hook_lock:
        if not _fork_hook_registered and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook_registered = True
