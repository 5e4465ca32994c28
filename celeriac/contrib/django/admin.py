"""A read-only admin for stored results: filter by state, task and date; search by id."""

from __future__ import annotations

import pprint
from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from ...backends.base import TaskMeta
from ...current import current_app
from .models import TaskResult


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
