"""Tasks-framework tasks for the tests (the framework wants them at module level)."""

from __future__ import annotations

from typing import Any

from django_tasks import task


@task()
def double(n: int) -> int:
    return n * 2


@task(priority=100, queue_name="queue1")
def urgent() -> str:
    return "urgent"


@task()
def explode() -> None:
    raise ValueError("boom")


@task(takes_context=True)
def attempt(context: Any) -> list[Any]:
    return [context.task_result.id, context.attempt]


@task()
async def async_double(n: int) -> int:
    return n * 2
