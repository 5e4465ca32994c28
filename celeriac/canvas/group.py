"""``group``, ``chunks``, ``xmap`` and ``xstarmap``: tasks that run side by side.

Every member of a group is sent in one ``app.publish`` call (one batch for the
broker); nested groups are flattened. ``chunks`` is a group of
``celeriac.starmap`` tasks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError
from ..ids import new_id
from ..message import Message
from ..result import AsyncResult, GroupResult
from .context import Context
from .signature import Result, Signature, maybe_signature, register_type
from .workflows import _Workflow, signatures

if TYPE_CHECKING:
    from ..app import Celeriac


@register_type
class group(_Workflow):
    """Tasks run in parallel; the result lists their results in order."""

    subtask_type = "group"

    def __init__(self, *tasks: Any, app: Celeriac | None = None, **options: Any) -> None:
        self.tasks = list(_flatten(signatures(tasks, app)))
        first_app = next((t._app for t in self.tasks if t._app is not None), None)
        super().__init__("celeriac.group", app or first_app, options)

    def __repr__(self) -> str:
        return f"group([{', '.join(repr(t) for t in self.tasks)}])"

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[Signature]:
        return iter(self.tasks)

    def to_dict(self) -> dict[str, Any]:
        return self._to_dict(tasks=[t.to_dict() for t in self.tasks])

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any], app: Celeriac | None) -> Signature:
        return cls([maybe_signature(t, app) for t in data["tasks"]], app=app)._restore(data)

    def clone(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Signature:
        copy = group([t.clone() for t in self.tasks], app=self._app)
        return self._merged_clone(copy, args, kwargs, options)

    def link_error(self, errback: Signature) -> Signature:
        """Run ``errback`` for each member that fails."""
        for member in self.tasks:
            member.link_error(maybe_signature(errback, self._app).clone())
        return errback

    # -- workflow internals ------------------------------------------------------
    def _freeze(self, app: Celeriac) -> Result:
        group_id = self.options["task_id"] = self.options.get("task_id") or new_id()
        results: list[AsyncResult[Any]] = []
        for index, member in enumerate(self.tasks):
            result = member._freeze(app)
            member._attach(group_id=group_id, group_index=index)
            assert isinstance(result, AsyncResult)
            results.append(result)
        return GroupResult(group_id, results, app)

    def _entry_id(self) -> str | None:
        return self.tasks[0]._entry_id() if self.tasks else None

    def _push_defaults(self, defaults: Mapping[str, Any]) -> None:
        spread = self._spread(defaults)
        for member in self.tasks:
            member._push_defaults(spread)

    def _attach(self, **options: Any) -> None:
        raise ConfigurationError(
            f"{self!r} ends a chain inside a group or chord, where one task must finish each "
            "member: add a task after the group (group | task is a chord) or flatten it"
        )

    def _link_after(self, callback: Signature) -> None:
        """Link to every member (a callback after the whole group is a chord)."""
        for member in self.tasks:
            member._link_after(callback.clone())

    def _entry_errbacks(self) -> list[Signature]:
        return [e for member in self.tasks for e in member._entry_errbacks()]

    def _walk(self) -> Iterator[Signature]:
        for member in self.tasks:
            yield from member._walk()

    def _messages(
        self, ctx: Context, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
    ) -> list[Message]:
        call_args, call_kwargs = self.merged(args, kwargs)
        return [m for member in self.tasks for m in member._messages(ctx, call_args, call_kwargs)]

    def _apply(self, app: Celeriac, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        call_args, call_kwargs = self.merged(args, kwargs)
        results = [member._apply(app, call_args, call_kwargs) for member in self.tasks]
        return GroupResult(self.options["task_id"], results, app)


def _flatten(tasks: Iterable[Signature]) -> Iterator[Signature]:
    """Members of nested groups join the outer group, with the inner group's options."""
    for task in tasks:
        if type(task) is group:
            spread = task._spread({})
            for member in _flatten(task.tasks):
                member = member.clone()
                member._push_defaults(spread)
                yield member
        else:
            yield task


_group = group


class chunks(group):
    """``task.chunks(items, n)``: a group of ``celeriac.starmap`` tasks, n items each."""

    def __init__(
        self, task: Any, it: Iterable[Any], n: int, app: Celeriac | None = None, **options: Any
    ) -> None:
        if not isinstance(n, int) or n < 1:
            raise ConfigurationError(f"chunks of {n!r} items: the size must be a positive int")
        sig = maybe_signature(task, app)
        items = iter(it)
        parts = iter(lambda: list(itertools.islice(items, n)), [])
        super().__init__([xstarmap(sig, part) for part in parts], app=app or sig._app, **options)

    def group(self) -> _group:
        """The plain group these chunks are."""
        copy = _group(self.tasks, app=self._app)
        copy.options = dict(self.options)
        return copy


def xmap(task: Any, it: Iterable[Any], app: Celeriac | None = None) -> Signature:
    """``task.map(items)``: one ``celeriac.map`` task calling ``task(item)`` for each item."""
    sig = maybe_signature(task, app)
    return Signature("celeriac.map", (sig.to_dict(), list(it)), app=app or sig._app)


def xstarmap(task: Any, it: Iterable[Any], app: Celeriac | None = None) -> Signature:
    """``task.starmap(items)``: one ``celeriac.starmap`` task calling ``task(*item)``."""
    sig = maybe_signature(task, app)
    items = [list(item) for item in it]
    return Signature("celeriac.starmap", (sig.to_dict(), items), app=app or sig._app)
