"""``from celeriac.utils.log import get_task_logger``, as Celery's ``celery.utils.log``.

A task logger is a standard logger whose records also carry the running task's
``task_id`` and ``task_name`` (``"???"`` outside a task), for formats such as
``"%(task_name)s[%(task_id)s]: %(message)s"``.
"""

from __future__ import annotations

import logging

from ..request import current_request


class _TaskFields(logging.Filter):
    """Adds the running task's id and name to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = current_request()
        record.task_id = (request.id if request else None) or "???"
        record.task_name = (request.task if request else None) or "???"
        return True


_FIELDS = _TaskFields()


def get_task_logger(name: str) -> logging.Logger:
    """The logger ``name`` for a tasks module, its records carrying the task's id and name."""
    logger = logging.getLogger(name)
    if _FIELDS not in logger.filters:
        logger.addFilter(_FIELDS)
    return logger


def get_logger(name: str) -> logging.Logger:
    """The logger ``name`` (Celery's ``get_logger``)."""
    return logging.getLogger(name)


__all__ = ["get_logger", "get_task_logger"]
