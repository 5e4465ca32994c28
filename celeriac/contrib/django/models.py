"""Tables of the ``django-db://`` result backend.

Every row carries ``expires_at`` (indexed): reads ignore expired rows, and
writers delete them now and then, so the tables stay bounded with no extra
process. The authoritative record is ``meta`` (a task's whole record, encoded
with the app's serializer); the other columns are copies for the admin's
filters and search.
"""

from __future__ import annotations

from typing import Any

from django.db import models


class TaskResult(models.Model):  # type: ignore[misc]
    """One task's state and outcome."""

    task_id = models.CharField(max_length=255, primary_key=True)
    name = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    state = models.CharField(max_length=16, db_index=True)
    queue = models.CharField(max_length=255, null=True, blank=True)
    worker = models.CharField(max_length=255, null=True, blank=True)
    group_id = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    date_done = models.DateTimeField(null=True, blank=True, db_index=True)
    expires_at = models.DateTimeField(db_index=True)
    meta = models.BinaryField()

    class Meta:
        ordering = ("-date_done",)
        verbose_name = "task result"
        verbose_name_plural = "task results"

    def __str__(self) -> str:
        return f"{self.name or 'task'}[{self.task_id}] {self.state}"


class GroupResult(models.Model):  # type: ignore[misc]
    """The members of a group, in order."""

    group_id = models.CharField(max_length=255, primary_key=True)
    task_ids: Any = models.JSONField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "group result"
        verbose_name_plural = "group results"

    def __str__(self) -> str:
        return f"group {self.group_id}"


class ChordPart(models.Model):  # type: ignore[misc]
    """A finished header task of a chord; ``index = -1`` marks the chord as joined.

    The unique constraint is the atomic step: a redelivered header task inserts
    nothing new, and only one caller can insert the join marker.
    """

    JOINED = -1

    group_id = models.CharField(max_length=255)
    index = models.IntegerField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("group_id", "index"), name="celeriac_chord_part_once"),
        )
        verbose_name = "chord part"
        verbose_name_plural = "chord parts"

    def __str__(self) -> str:
        return f"chord {self.group_id} part {self.index}"


class PeriodicTask(models.Model):  # type: ignore[misc]
    """A periodic task kept in the database and edited in the admin.

    Saving one (or deleting it) changes the beat's schedule in the broker at once
    (:mod:`celeriac.contrib.django.beat`); the leading beat applies it within a
    second, as django-celery-beat's ``DatabaseScheduler`` does, without a restart.
    ``every`` (seconds) or the crontab fields give the schedule.
    """

    name = models.CharField(max_length=200, unique=True)
    task = models.CharField(max_length=255, help_text="the task's name, e.g. proj.tasks.add")
    every = models.FloatField(
        null=True, blank=True, help_text="seconds between runs; or leave empty and use crontab"
    )
    minute = models.CharField(max_length=64, blank=True, default="")
    hour = models.CharField(max_length=64, blank=True, default="")
    day_of_week = models.CharField(max_length=64, blank=True, default="")
    day_of_month = models.CharField(max_length=64, blank=True, default="")
    month_of_year = models.CharField(max_length=64, blank=True, default="")
    args: Any = models.JSONField(default=list, blank=True)
    kwargs: Any = models.JSONField(default=dict, blank=True)
    queue = models.CharField(max_length=200, blank=True, default="")
    priority = models.PositiveSmallIntegerField(null=True, blank=True)
    expires = models.FloatField(null=True, blank=True, help_text="seconds after it is sent")
    catch_up = models.CharField(
        max_length=4, choices=(("once", "once"), ("skip", "skip")), default="once"
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ("name",)
        verbose_name = "periodic task"
        verbose_name_plural = "periodic tasks"

    def __str__(self) -> str:
        return str(self.name)
