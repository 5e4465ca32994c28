"""The admin: stored results, read-only (filter by state, task and date; search by id), and
periodic tasks, edited (the beat follows within a second)."""

from __future__ import annotations

import pprint
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from ...backends.base import TaskMeta
from ...beat import run_entry
from ...current import current_app
from .beat import schedule_of
from .models import PeriodicTask, TaskResult


def _decoded(obj: TaskResult) -> TaskMeta | None:
    try:
        return TaskMeta.from_bytes(bytes(obj.meta), current_app().codec)
    except Exception:  # a record written with a serializer this process does not accept
        return None


def _field(name: str, description: str) -> Any:
    def show(self: Any, obj: TaskResult) -> str:
        meta = _decoded(obj)
        if meta is None:
            return "(cannot be decoded with this app's accept_content)"
        value = getattr(meta, name)
        return value if isinstance(value, str) else pprint.pformat(value, width=100)

    show.short_description = description  # type: ignore[attr-defined]
    return show


@admin.register(TaskResult)
class TaskResultAdmin(admin.ModelAdmin):  # type: ignore[misc]
    """Results as the workers stored them; nothing here can be changed."""

    list_display = ("task_id", "name", "state", "worker", "date_done")
    list_filter = ("state", "name", "date_done")
    search_fields = ("=task_id",)
    date_hierarchy = "date_done"
    fields = (
        "task_id",
        "name",
        "state",
        "queue",
        "worker",
        "group_id",
        "date_done",
        "expires_at",
        "result",
        "traceback",
        "arguments",
        "keyword_arguments",
        "retries",
    )
    readonly_fields = fields

    result = _field("result", "result")
    traceback = _field("traceback", "traceback")
    arguments = _field("args", "args")
    keyword_arguments = _field("kwargs", "kwargs")
    retries = _field("retries", "retries")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PeriodicTaskForm(forms.ModelForm):  # type: ignore[misc]
    """Checks the schedule as the beat will read it, naming what is wrong."""

    class Meta:
        model = PeriodicTask
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean()
        schedule_of(PeriodicTask(**{k: v for k, v in cleaned.items() if k != "id"}))
        return cleaned


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(admin.ModelAdmin):  # type: ignore[misc]
    """Periodic tasks: add, edit, enable or disable, run now; the beat follows within a second."""

    form = PeriodicTaskForm
    list_display = ("name", "task", "when", "enabled", "catch_up", "queue")
    list_filter = ("enabled", "catch_up")
    search_fields = ("name", "task")
    actions = ("run_now", "enable", "disable")

    def when(self, obj: PeriodicTask) -> str:
        try:
            return repr(schedule_of(obj))
        except Exception:  # a row written around the form
            return "(invalid)"

    when.short_description = "schedule"  # type: ignore[attr-defined]

    def run_now(self, request: HttpRequest, queryset: Any) -> None:
        app = current_app()
        for row in queryset:
            run_entry(app, row.name)
        self.message_user(request, f"Sent {queryset.count()} task(s) now")

    run_now.short_description = "Run the selected tasks now"  # type: ignore[attr-defined]

    def enable(self, request: HttpRequest, queryset: Any) -> None:
        for row in queryset:
            row.enabled = True
            row.save()  # through the signals: the beat follows

    enable.short_description = "Enable the selected tasks"  # type: ignore[attr-defined]

    def disable(self, request: HttpRequest, queryset: Any) -> None:
        for row in queryset:
            row.enabled = False
            row.save()

    disable.short_description = "Disable (pause) the selected tasks"  # type: ignore[attr-defined]
