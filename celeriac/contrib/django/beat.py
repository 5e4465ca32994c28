"""Periodic tasks from the Django database: each saved ``PeriodicTask`` is a runtime entry.

A save writes the entry to the broker (``celeriac.beat.add_entry``, then pause or
resume as ``enabled`` says), a delete removes it, a rename removes the old name:
the leading beat applies each change within a second. ``sync_all()`` writes every
row again (after the broker lost its data, say).
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models.signals import post_delete, post_save, pre_save

from ...beat import add_entry, pause_entry, remove_entry, resume_entry
from ...current import current_app
from ...exceptions import ConfigurationError
from ...schedules import BaseSchedule, crontab, schedule
from .models import PeriodicTask

_CRON_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")


def schedule_of(row: PeriodicTask) -> BaseSchedule:
    """The row's schedule, or a ``ValidationError`` naming the field that is wrong."""
    cron = {name: getattr(row, name) for name in _CRON_FIELDS if getattr(row, name)}
    if row.every is not None and cron:
        raise ValidationError("give either every (seconds) or crontab fields, not both")
    try:
        if row.every is not None:
            return schedule(row.every)
        if not cron:
            raise ValidationError("give every (seconds) or at least one crontab field")
        return crontab(**cron)
    except (TypeError, ValueError) as exc:
        raise ValidationError(str(exc)) from None


def sync(row: PeriodicTask) -> None:
    """Write one row to the broker's schedule."""
    app = current_app()
    options: dict[str, Any] = {}
    if row.queue:
        options["queue"] = row.queue
    if row.priority is not None:
        options["priority"] = row.priority
    if row.expires is not None:
        options["expires"] = row.expires
    try:
        add_entry(
            app, row.name, row.task, schedule_of(row), row.args or (), row.kwargs or {},
            options, row.catch_up,
        )  # fmt: skip
    except ConfigurationError as exc:
        raise ValidationError(str(exc)) from None
    (resume_entry if row.enabled else pause_entry)(app, row.name)


def sync_all() -> int:
    """Write every row to the broker; how many."""
    rows = list(PeriodicTask.objects.all())
    for row in rows:
        sync(row)
    return len(rows)


def _renamed(sender: Any, instance: PeriodicTask, **_: Any) -> None:
    if instance.pk is None:
        return
    old = PeriodicTask.objects.filter(pk=instance.pk).values_list("name", flat=True).first()
    if old is not None and old != instance.name:
        _remove(old)


def _saved(sender: Any, instance: PeriodicTask, **_: Any) -> None:
    sync(instance)


def _deleted(sender: Any, instance: PeriodicTask, **_: Any) -> None:
    _remove(instance.name)


def _remove(name: str) -> None:
    with contextlib.suppress(ConfigurationError):  # not in the schedule: nothing to remove
        remove_entry(current_app(), name)


def connect_signals() -> None:
    """Keep the broker's schedule in step with the table (called by the AppConfig)."""
    pre_save.connect(_renamed, sender=PeriodicTask, dispatch_uid="celeriac-beat-rename")
    post_save.connect(_saved, sender=PeriodicTask, dispatch_uid="celeriac-beat-save")
    post_delete.connect(_deleted, sender=PeriodicTask, dispatch_uid="celeriac-beat-delete")
