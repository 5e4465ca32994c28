"""Routers importable by path, as ``task_routes = "tests.routing.routers:by_tenant"``."""

from __future__ import annotations

from typing import Any


def by_tenant(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Big tenants get their own queue; everyone else falls through."""
    if kwargs.get("tenant") == "big":
        return {"queue": "tenant-big", "priority": 8}
    return None


class CeleryStyleRouter:
    """Celery's old router class: ``route_for_task(task, args, kwargs)``."""

    def route_for_task(self, task: str, args: Any = None, kwargs: Any = None) -> Any:
        return "legacy" if task.endswith(".legacy") else None
