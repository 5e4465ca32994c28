"""The middleware stack: each hook resolved to the middleware that override it, in order."""

from __future__ import annotations

from typing import Any

from celeriac.middleware import Middleware, MiddlewareStack
from celeriac.worker.job import Job


class Calls(Middleware):
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def after_process(self, job: Job) -> None:
        self.log.append(f"{self.name}.after_process")


class Results(Middleware):
    def after_result(self, job: Job) -> None:
        pass

    def worker_start(self, app: Any, worker: Any) -> None:
        pass


def test_only_overridden_hooks_are_in_the_stack_in_the_order_added() -> None:
    log: list[str] = []
    first, second, results = Calls(log, "first"), Calls(log, "second"), Results()
    stack = MiddlewareStack([first, results])
    stack.add(second, before=Results)

    assert list(stack) == [first, second, results]
    assert stack.before_enqueue == [] and stack.before_process == [] and stack.after_ack == []
    for hook in stack.after_process:
        hook(None)  # type: ignore[arg-type]
    assert log == ["first.after_process", "second.after_process"]
    assert stack.after_result == [results]
    assert stack.worker_start == [results.worker_start] and stack.worker_stop == []

    stack.remove(Calls)
    assert stack.after_process == [] and list(stack) == [results]
