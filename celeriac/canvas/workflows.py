"""Workflows: ``chain``, ``group``, ``chord`` and ``chunks``.

How each one runs, with no coordinating process and no polling task:

* **chain**: the first task is sent with the rest of the chain as its callback
  (``Message.callbacks``); each task's result becomes the first argument of the
  next. Every task's id is chosen up front, so the chain's result is the last
  task's, and a failing step marks the steps after it failed with its error.
* **group**: every member is sent in one ``app.publish`` call (one batch for
  the broker). Nested groups are flattened.
* **chord**: the header group is sent with the body in each member's
  ``Message.chord``; the worker that finishes the last member (the backend's
  atomic ``chord_part_done``) sends the body with the results in order, or, if
  a member failed, stores that failure as the body's result and runs the body's
  errbacks once.

A group followed by anything in a chain becomes a chord, as in Celery.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..brokers import scheme_of
from ..exceptions import ConfigurationError
from ..message import Message
from ..result import AsyncResult, GroupResult
from .signature import (
    SPREAD,
    STARTING,
    Context,
    Result,
    Signature,
    maybe_signature,
    register_type,
)

if TYPE_CHECKING:
    from ..app import Celeriac

_MEMBERSHIP = ("group_id", "group_index", "chord")


def _signatures(tasks: tuple[Any, ...], app: Celeriac | None) -> list[Signature]:
    """``chain(a, b)`` and ``chain([a, b])`` (or a generator) mean the same."""
    if len(tasks) == 1 and not isinstance(tasks[0], (Signature, Mapping)):
        tasks = tuple(tasks[0])
    return [maybe_signature(t, app) for t in tasks]


class _Workflow(Signature):
    """What chain, group and chord share: options that apply to the tasks inside."""

    def __init__(self, name: str, app: Celeriac | None, options: dict[str, Any]) -> None:
        super().__init__(name, app=app)
        self.set(**options)

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        """Options for every task inside that does not set its own; ``link=`` links after."""
        for callback in options.pop("link", None) or ():
            self.link(maybe_signature(callback, self._app))
        for errback in options.pop("link_error", None) or ():
            self.link_error(maybe_signature(errback, self._app))
        membership = {k: options.pop(k) for k in _MEMBERSHIP if k in options}
        if membership:
            self._attach(**membership)
        return super().set(immutable, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Send it, as Celery does when a workflow is called."""
        return self.apply_async(args, kwargs)

    def _spread(self, defaults: Mapping[str, Any]) -> dict[str, Any]:
        own = {k: v for k, v in self.options.items() if k in SPREAD}
        return {**defaults, **own}

    def link(self, callback: Signature) -> Signature:
        self._link_after(maybe_signature(callback, self._app))
        return callback

    def _to_dict(self, **parts: Any) -> dict[str, Any]:
        return {
            "subtask_type": self.subtask_type,
            **parts,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "options": {k: v for k, v in self.options.items() if k in SPREAD or k == "task_id"},
            "immutable": self.immutable,
        }

    def _restore(self, data: Mapping[str, Any]) -> Signature:
        self.args = tuple(data.get("args") or ())
        self.kwargs = dict(data.get("kwargs") or {})
        self.immutable = bool(data.get("immutable"))
        return self.set(**(data.get("options") or {}))

    def _merged_clone(
        self,
        copy: _Workflow,
        args: Sequence[Any] | None,
        kwargs: Mapping[str, Any] | None,
        options: dict[str, Any],
    ) -> Signature:
        copy.args, copy.kwargs = self.merged(args or (), kwargs)
        copy.immutable = self.immutable
        copy.options = {k: v for k, v in self.options.items()}
        return copy.set(**options) if options else copy


def _without_start(defaults: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in defaults.items() if k not in STARTING}


@register_type
class chain(_Workflow):
    """Tasks run one after another, each result the first argument of the next."""

    subtask_type = "chain"

    def __init__(self, *tasks: Any, app: Celeriac | None = None, **options: Any) -> None:
        self._app = app
        self.tasks: list[Signature] = []
        for step in _signatures(tasks, app):
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
            step._push_defaults(_without_start(spread))

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
        from .eager import failed

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


@register_type
class group(_Workflow):
    """Tasks run in parallel; the result lists their results in order."""

    subtask_type = "group"

    def __init__(self, *tasks: Any, app: Celeriac | None = None, **options: Any) -> None:
        self.tasks = list(_flatten(_signatures(tasks, app)))
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
        group_id = self.options["task_id"] = self.options.get("task_id") or str(uuid.uuid4())
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


@register_type
class chord(_Workflow):
    """A group (the header) whose results, in order, go to one callback (the body)."""

    subtask_type = "chord"

    def __init__(
        self, header: Any, body: Any = None, app: Celeriac | None = None, **options: Any
    ) -> None:
        self.header = header if type(header) is group else group(header, app=app)
        self.body = None if body is None else maybe_signature(body, app)
        app = app or self.header._app or (self.body._app if self.body else None)
        super().__init__("celeriac.chord", app, options)

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r})"

    def __call__(self, body: Any = None, **options: Any) -> Any:  # type: ignore[override]
        """``chord(header)(body)``: send the chord (Celery's spelling)."""
        node = self if body is None else chord(self.header, body, app=self._app, **self.options)
        return node.apply_async(**options)

    @property
    def tasks(self) -> list[Signature]:
        return self.header.tasks

    @property
    def id(self) -> str | None:
        return self._body().id

    def _body(self) -> Signature:
        if self.body is None:
            raise ConfigurationError(f"{self!r} has no body: chord(header, body)")
        return self.body

    def to_dict(self) -> dict[str, Any]:
        return self._to_dict(header=self.header.to_dict(), body=self._body().to_dict())

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any], app: Celeriac | None) -> Signature:
        header = maybe_signature(data["header"], app)
        return cls(header, maybe_signature(data["body"], app), app=app)._restore(data)

    def clone(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Signature:
        body = None if self.body is None else self.body.clone()
        copy = chord(self.header.clone(), body, app=self._app)
        return self._merged_clone(copy, args, kwargs, options)

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        if "task_id" in options:  # the chord's result is its body's
            self._body().set(task_id=options.pop("task_id"))
        return super().set(immutable, **options)

    def link_error(self, errback: Signature) -> Signature:
        """Run ``errback`` once if the chord fails: a header task or the body."""
        return self._body().link_error(maybe_signature(errback, self._app))

    # -- workflow internals ------------------------------------------------------
    def _freeze(self, app: Celeriac) -> Result:
        header = self.header._freeze(app)
        result = self._body()._freeze(app)
        result.parent = header
        return result

    def _entry_id(self) -> str | None:
        return self.header._entry_id() or self._body()._entry_id()

    def _push_defaults(self, defaults: Mapping[str, Any]) -> None:
        spread = self._spread(defaults)
        self.header._push_defaults(spread)
        self._body()._push_defaults(_without_start(spread))

    def _attach(self, **options: Any) -> None:
        self._body()._attach(**options)

    def _link_after(self, callback: Signature) -> None:
        self._body()._link_after(callback)

    def _entry_errbacks(self) -> list[Signature]:
        return self._body()._entry_errbacks()

    def _walk(self) -> Iterator[Signature]:
        yield from self.header._walk()
        yield from self._body()._walk()

    def _messages(
        self, ctx: Context, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
    ) -> list[Message]:
        body = self._body()
        members = self.header.tasks
        if not members:  # nothing to wait for
            return body._messages(ctx, ([],), {})
        call_args, call_kwargs = self.merged(args, kwargs)
        if scheme_of(ctx.app.backend_url) == "disabled":
            raise ConfigurationError(
                "a chord needs a result backend, where its header's results meet: set "
                "result_backend (redis://..., sqlite:///results.sqlite3, ...)"
            )
        header = self.header._freeze(ctx.app)
        assert isinstance(header, GroupResult)
        ctx.app.backend.save_group(header.id, [r.id for r in header.results])
        join = {"callback": body.to_dict(), "size": len(members)}
        for member in members:
            member._attach(chord=join, ignore_result=False)  # the join reads every result
        return self.header._messages(ctx, call_args, call_kwargs)

    def _apply(self, app: Celeriac, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        from .eager import fail_chord, failed

        call_args, call_kwargs = self.merged(args, kwargs)
        header = self.header._apply(app, call_args, call_kwargs)
        failure = next((r for r in header.results if failed(r)), None)
        if failure is not None:
            result = fail_chord(app, self._body(), failure)
        else:
            result = self._body()._apply(app, (header.get(),), {})
        result.parent = header
        return result


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


__all__ = ["chain", "chord", "chunks", "group", "xmap", "xstarmap"]
