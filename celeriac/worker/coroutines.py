"""Running an ``async def`` task under its time limits, on any event loop.

asyncio can only interrupt a coroutine by cancelling it, and a task written
for Celery expects ``SoftTimeLimitExceeded``, not ``CancelledError``. So the
coroutine is driven step by step by :class:`_Interruptible`, which forwards
every step to the event loop unchanged and, when the soft limit fires, turns
the resulting cancellation into ``SoftTimeLimitExceeded`` thrown at the
coroutine's pending ``await``. The task may catch it and return.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine, Generator
from typing import Any

from ..exceptions import SoftTimeLimitExceeded, TimeLimitExceeded


class _Interruptible:
    """An awaitable that runs ``coro`` and can deliver a soft limit into it."""

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        self.soft_pending = False

    def interrupt(self, task: asyncio.Task[Any]) -> None:
        """Deliver ``SoftTimeLimitExceeded`` into the coroutine run by ``task``."""
        if not task.done():
            self.soft_pending = True
            task.cancel()

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self.coro
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                value = yield step  # the event loop's answer to this step
            except GeneratorExit:
                coro.close()
                raise
            except asyncio.CancelledError as cancelled:
                error = self._translate(cancelled)
            except BaseException as exc:
                error = exc

    def _translate(self, cancelled: asyncio.CancelledError) -> BaseException:
        if not self.soft_pending:
            return cancelled
        self.soft_pending = False
        task = asyncio.current_task()
        if task is not None and sys.version_info >= (3, 11):
            task.uncancel()  # the cancel was consumed
        return SoftTimeLimitExceeded("soft time limit exceeded")


async def _drive(driver: _Interruptible) -> Any:
    return await driver


async def run_limited(
    coro: Coroutine[Any, Any, Any], soft: float | None, hard: float | None
) -> Any:
    """Await ``coro``; raise ``SoftTimeLimitExceeded`` in it at ``soft`` seconds and give
    up on it with ``TimeLimitExceeded`` at ``hard`` seconds."""
    if soft is None and hard is None:
        return await coro
    loop = asyncio.get_running_loop()
    driver = _Interruptible(coro)
    task = loop.create_task(_drive(driver))  # copies the context: self.request works
    soft_timer = loop.call_later(soft, driver.interrupt, task) if soft is not None else None
    try:
        done, _ = await asyncio.wait({task}, timeout=hard)
        if task in done:
            return task.result()
        task.cancel()
        raise TimeLimitExceeded(f"hard time limit ({hard:g}s) exceeded")
    finally:
        if soft_timer is not None:
            soft_timer.cancel()
        if not task.done():
            task.cancel()
