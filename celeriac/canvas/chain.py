"""``chain``: tasks run one after another, each result the first argument of the next.

The first task is sent with the rest of the chain as its callback
(``Message.callbacks``). Every task's id is chosen up front, so the chain's
result is the last task's, and a failing step gives the steps after it its
error (see :mod:`celeriac.canvas.flow`). A group followed by anything in a
chain becomes a chord, as in Celery.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError
from ..message import Message
from .chord import chord
from .context import Context
from .eager import failed
from .group import group
from .signature import Result, Signature, maybe_signature, register_type
from .workflows import _Workflow, signatures, without_start

if TYPE_CHECKING:
    from ..app import Celeriac


@register_type
class chain(_Workflow):
    """Tasks run one after another, each result the first argument of the next."""

    subtask_type = "chain"

    def __init__(self, *tasks: Any, app: Celeriac | None = None, **options: Any) -> None:
        self._app = app
        self.tasks: list[Signature] = []
        for step in signatures(tasks, app):
            self._append(step)
        if not self.tasks:
            raise ConfigurationError("a chain needs at least one task: chain(add.s(1, 2), ...)")
        super().__init__("celeriac.chain", app or self.tasks[0]._app, options)

    def _append(self, step: Signature) -> None:
        if type(step) is chain and not (step.options or step.args or step.kwargs):
            for inner in step.tasks:
                self._append(inner)
        elif self.tasks and type(self.tasks[-1]) is group:
            self.tasks[-1] = chord(self.tasks[-1], step, app=self._app)  # group | task
        else:
            self.tasks.append(step)

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks)

    @property
    def id(self) -> str | None:
        return self.tasks[-1].id

    def to_dict(self) -> dict[str, Any]:
        return self._to_dict(tasks=[t.to_dict() for t in self.tasks])

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any], app: Celeriac | None) -> Signature:
        return cls(*[maybe_signature(t, app) for t in data["tasks"]], app=app)._restore(data)

    def clone(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Signature:
        copy = chain(*[t.clone() for t in self.tasks], app=self._app)
        return self._merged_clone(copy, args, kwargs, options)

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        if "task_id" in options:  # the chain's result is its last task's
            self.tasks[-1].set(task_id=options.pop("task_id"))
        return super().set(immutable, **options)

    def link_error(self, errback: Signature) -> Signature:
        """Run ``errback`` once if any step fails (it is linked to every step)."""
        for step in self.tasks:
            step.link_error(maybe_signature(errback, self._app).clone())
        return errback

    # -- workflow internals ------------------------------------------------------
    def _freeze(self, app: Celeriac) -> Result:
        previous: Result | None = None
        for step in self.tasks:
            result = step._freeze(app)
            result.parent = previous
            previous = result
        assert previous is not None
        return previous

    def _entry_id(self) -> str | None:
        return self.tasks[0]._entry_id()

    def _push_defaults(self, defaults: Mapping[str, Any]) -> None:
        spread = self._spread(defaults)
        self.tasks[0]._push_defaults(spread)
        for step in self.tasks[1:]:
            step._push_defaults(without_start(spread))

    def _attach(self, **options: Any) -> None:
        self.tasks[-1]._attach(**options)

    def _link_after(self, callback: Signature) -> None:
        last = self.tasks[-1]
        if type(last) is group:  # a group followed by a task is a chord
            self.tasks[-1] = chord(last, callback, app=self._app)
        else:
            last._link_after(callback)

    def _entry_errbacks(self) -> list[Signature]:
        return self.tasks[0]._entry_errbacks()

    def _walk(self) -> Iterator[Signature]:
        for step in self.tasks:
            yield from step._walk()

    def _messages(
        self, ctx: Context, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
    ) -> list[Message]:
        call_args, call_kwargs = self.merged(args, kwargs)
        first, rest = self.tasks[0], self.tasks[1:]
        if rest:  # the rest travels as the first task's callback
            first._link_after(rest[0] if len(rest) == 1 else chain(*rest, app=self._app))
        return first._messages(ctx, call_args, call_kwargs)

    def _apply(self, app: Celeriac, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        call_args, call_kwargs = self.merged(args, kwargs)
        result: Any = None
        for step in self.tasks:
            previous = result
            result = step._apply(app, call_args, call_kwargs)
            result.parent = previous
            if failed(result):
                return result
            call_args, call_kwargs = (result.get(),), {}
        return result


__all__ = ["chain"]
