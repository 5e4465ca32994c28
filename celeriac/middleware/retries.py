"""Retries: ``self.retry()``, ``autoretry_for`` with backoff and jitter, ``max_retries``.

Every retry is a new message with ``retries + 1`` and an ``eta``, so it waits in
the broker's delayed set (never in a worker's memory) and survives restarts.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import states
from ..backoff import exponential
from ..exceptions import Retry
from .base import Middleware

if TYPE_CHECKING:
    from ..worker.job import Job


class Retries(Middleware):
    """Turns ``Retry`` and auto-retried exceptions into a delayed message."""

    def after_process(self, job: Job) -> None:
        exc = job.exception
        if exc is None:
            return
        if isinstance(exc, Retry):
            self._schedule(job, exc)
        elif job.state == states.FAILURE and self._autoretries(job, exc):
            delay = self._auto_delay(job)
            limit = self._limit(job)
            if limit is None or job.message.retries < limit:
                self._schedule(job, Retry(exc=exc, when=delay))

    def _autoretries(self, job: Job, exc: BaseException) -> bool:
        task = job.task
        return (
            bool(task.autoretry_for)
            and isinstance(exc, task.autoretry_for)
            and not (task.dont_autoretry_for and isinstance(exc, tuple(task.dont_autoretry_for)))
        )

    def _limit(self, job: Job) -> Any:
        task = job.task
        kwargs = task.retry_kwargs or {}
        if "max_retries" in kwargs:
            return kwargs["max_retries"]
        return task.effective_max_retries

    def _auto_delay(self, job: Job) -> float:
        task = job.task
        kwargs = task.retry_kwargs or {}
        if task.retry_backoff:
            factor = 1.0 if task.retry_backoff is True else float(task.retry_backoff)
            return exponential(
                job.message.retries,
                first=factor,
                cap=task.retry_backoff_max,
                jitter=bool(task.retry_jitter),
            )
        if "countdown" in kwargs:
            return float(kwargs["countdown"])
        return float(task.effective_retry_delay)

    def _schedule(self, job: Job, retry: Retry) -> None:
        now = time.time()
        when = retry.when
        if isinstance(when, datetime):
            eta = when.timestamp()
        elif retry.is_eta and when is not None:
            eta = float(when)
        else:
            eta = now + float(when or 0.0)
        message = job.message
        changes: dict[str, Any] = {"retries": message.retries + 1, "eta": eta, "sent_at": now}
        if retry.new_args is not None:
            changes["args"] = tuple(retry.new_args)
        if retry.new_kwargs is not None:
            changes["kwargs"] = dict(retry.new_kwargs)
        job.retry_at = eta
        job.retry_message = message.replace(**changes)
        job.state = states.RETRY
        job.exception = retry.exc or retry
        job.result = None
