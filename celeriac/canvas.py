"""Canvas: signatures and workflows (being built: Signature only for now)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import Celeriac
    from .result import AsyncResult


class Signature:
    """A task call that can be passed around: name, arguments and options."""

    def __init__(self, task: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                 options: dict[str, Any] | None = None, immutable: bool = False,
                 app: Celeriac | None = None) -> None:
        self.task = task
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.options = dict(options or {})
        self.immutable = immutable
        self._app = app

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "args": list(self.args), "kwargs": self.kwargs,
                "options": self.options, "immutable": self.immutable}

    def apply_async(self, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                    **options: Any) -> AsyncResult[Any]:
        from .app import current_app

        app = self._app or current_app()
        return app.send_task(self.task, (*args, *self.args), {**self.kwargs, **(kwargs or {})},
                             **{**self.options, **options})

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult[Any]:
        return self.apply_async(args, kwargs)


def signature(task: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
              **options: Any) -> Signature:
    name = task if isinstance(task, str) else task.name
    return Signature(name, args, kwargs, options)


def _not_yet(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("workflows are not built yet")


group = chain = chord = chunks = _not_yet
