"""Signatures: a task call as a value that can be sent, linked, composed and carried.

A :class:`Signature` is a task name, (partial) arguments and sending options.
It is a plain object, not a dict: ``to_dict()`` / ``from_dict()`` give the form
that travels inside messages (``Message.callbacks``, ``errbacks``, ``chord``).

Partial application follows Celery: arguments given when the signature is
sent or cloned come *before* its own (``add.s(2).delay(1)`` runs ``add(1, 2)``),
keyword arguments given later win, and an immutable signature (``task.si()``)
ignores both. So a parent's result reaches a callback as its first argument.

The workflows (``chain``, ``group``, ``chord``) subclass :class:`Signature`
and override the few internal steps every node implements: ``_freeze`` (give
each task its id up front), ``_messages`` (the messages that start the node),
``_attach`` (options for the task that completes the node), ``_link_after``
(what runs once the node completes), ``_push_defaults`` and ``_walk``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..current import current_app
from ..exceptions import ConfigurationError
from ..ids import new_id
from ..message import Message, check_priority
from ..result import AsyncResult, GroupResult
from .build import send
from .context import Context
from .eager import run, run_task

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..task import Task

#: Options a signature may carry: what ``apply_async`` accepts.
OPTIONS = frozenset(
    {
        "queue",
        "priority",
        "countdown",
        "eta",
        "expires",
        "task_id",
        "headers",
        "link",
        "link_error",
        "ignore_result",
        # Set by workflows on the task that completes a group member or chord part.
        "group_id",
        "group_index",
        "chord",
    }
)
#: Options a workflow passes down to the tasks inside it, unless a task sets its own.
SPREAD = ("queue", "priority", "expires", "headers", "ignore_result", "countdown", "eta")
#: Spread options that only concern the first task to run (a chain starts later).
STARTING = ("countdown", "eta")

Result = AsyncResult[Any] | GroupResult


class Signature:
    """A task call that can be passed around: ``add.s(1, 2)``, ``signature("proj.add")``."""

    subtask_type: ClassVar[str | None] = None
    #: a chain, group or chord rather than one task call
    is_workflow: ClassVar[bool] = False

    def __init__(
        self,
        task: Any,
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        immutable: bool = False,
        app: Celeriac | None = None,
        **extra_options: Any,
    ) -> None:
        name = task if isinstance(task, str) else getattr(task, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"a signature needs a task or a task name, not {task!r}")
        self.task = name
        self.args: tuple[Any, ...] = tuple(args or ())
        self.kwargs: dict[str, Any] = dict(kwargs or {})
        self.options: dict[str, Any] = {}
        self.immutable = immutable
        self._app = app or getattr(task, "app", None)
        self.set(**{**(options or {}), **extra_options})

    # -- identity --------------------------------------------------------------
    @property
    def app(self) -> Celeriac:
        return self._app or current_app()

    @property
    def name(self) -> str:
        return self.task

    @property
    def type(self) -> Task[Any, Any]:
        """The registered task this signature calls (``NotRegistered`` if none)."""
        return self.app.get_task(self.task)

    @property
    def id(self) -> str | None:
        """The task id, once frozen (or set with ``set(task_id=...)``)."""
        return self.options.get("task_id")

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.task}({', '.join(parts)}){'!' if self.immutable else ''}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Signature) and other.to_dict() == self.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    # -- options -----------------------------------------------------------------
    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        """Change sending options in place (``queue=``, ``priority=``, ``countdown=``...)."""
        unknown = set(options) - OPTIONS
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {sorted(unknown)} for signature {self!r}: "
                f"known options are {sorted(OPTIONS)}"
            )
        if options.get("priority") is not None:
            check_priority(options["priority"])
        for key in ("link", "link_error"):
            if key in options:
                options[key] = [maybe_signature(s, self._app) for s in _as_list(options[key])]
        self.options.update(options)
        if immutable is not None:
            self.immutable = immutable
        return self

    def set_immutable(self, immutable: bool) -> None:
        self.immutable = immutable

    def link(self, callback: Signature) -> Signature:
        """Run ``callback`` with this task's result (first argument) once it succeeds."""
        self.options.setdefault("link", []).append(maybe_signature(callback, self._app))
        return callback

    def link_error(self, errback: Signature) -> Signature:
        """Run ``errback`` if this task fails (its arguments: ``celeriac.canvas.errbacks``)."""
        self.options.setdefault("link_error", []).append(maybe_signature(errback, self._app))
        return errback

    def on_error(self, errback: Signature) -> Signature:
        """``link_error`` that returns this signature, for chaining calls."""
        self.link_error(errback)
        return self

    def merged(
        self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments a call would run with: new ones first, unless immutable."""
        if self.immutable:
            return self.args, dict(self.kwargs)
        return (*args, *self.args), {**self.kwargs, **(kwargs or {})}

    def clone(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Signature:
        """A copy with partial arguments applied and options changed; ``self`` is untouched."""
        new_args, new_kwargs = self.merged(args or (), kwargs)
        copy = Signature(self.task, new_args, new_kwargs, immutable=self.immutable, app=self._app)
        copy.options = _copy_options(self.options)
        return copy._set_cloned(options)

    def _set_cloned(self, options: dict[str, Any]) -> Signature:
        if "group_id" in self.options:  # membership of a group already sent must not change
            options.pop("group_id", None)
        return self.set(**options) if options else self

    # -- sending -------------------------------------------------------------------
    def freeze(self, _id: str | None = None) -> Any:
        """Give every task inside its id now; returns the result this will have."""
        if _id is not None:
            self.options["task_id"] = _id
        return self._freeze(self.app)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Send it: ``AsyncResult`` for a task or chain, ``GroupResult`` for a group."""
        app = self.app
        if app.conf.task_always_eager:
            return self.apply(args, kwargs, **options)
        return send(app, self.clone(args, kwargs, **options))

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        """``apply_async`` with partial arguments given the Python way."""
        return self.apply_async(args, kwargs)

    def apply(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Run it here and now, workflows included, as ``task_always_eager`` does."""
        return run(self.app, self.clone(args, kwargs, **options))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the task's function here, with the partial arguments applied."""
        call_args, call_kwargs = self.merged(args, kwargs)
        return self.type(*call_args, **call_kwargs)

    def __or__(self, other: Any) -> Signature:
        if not isinstance(other, Signature):
            return NotImplemented
        chain: Callable[..., Signature] = _TYPES["chain"]  # a subclass: registered, not imported
        return chain(self, other, app=self._app)

    # -- the travelling form ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data for a message; ``from_dict`` turns it back into a signature."""
        return {
            "task": self.task,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "options": _options_to_dict(self.options),
            "immutable": self.immutable,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], app: Celeriac | None = None) -> Signature:
        """Rebuild any signature or workflow from ``to_dict()`` output."""
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{data!r} is not a signature: expected a dict from to_dict()")
        kind = data.get("subtask_type")
        if kind is not None:
            builder = _TYPES.get(kind)
            if builder is None:
                raise ConfigurationError(f"unknown workflow type {kind!r} in {data!r}")
            return builder._from_dict(data, app)
        return cls._from_dict(data, app)

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any], app: Celeriac | None) -> Signature:
        if not isinstance(data.get("task"), str):
            raise ConfigurationError(f"{data!r} is not a signature: it names no task")
        return Signature(
            data["task"],
            data.get("args") or (),
            data.get("kwargs") or {},
            options=data.get("options") or {},
            immutable=bool(data.get("immutable")),
            app=app,
        )

    # -- what workflows build on (overridden by chain, group, chord) --------------------
    def _freeze(self, app: Celeriac) -> Result:
        task_id = self.options["task_id"] = self.options.get("task_id") or new_id()
        return AsyncResult(task_id, app, self.task)

    def _entry_id(self) -> str | None:
        """The id of the first task this node sends."""
        return self.id

    def _push_defaults(self, defaults: Mapping[str, Any]) -> None:
        for key, value in defaults.items():
            self.options.setdefault(key, value)

    def _attach(self, **options: Any) -> None:
        """Options for the task whose completion completes this node."""
        self.options.update(options)

    def _link_after(self, callback: Signature) -> None:
        self.link(callback)

    def _entry_errbacks(self) -> list[Signature]:
        """The errbacks of whatever would have run first, for a chord that fails."""
        return list(self.options.get("link_error", ()))

    def _walk(self) -> Iterator[Signature]:
        """Every task inside, and everything linked to run after them."""
        yield self
        for callback in self.options.get("link", ()):
            yield from callback._walk()

    def _messages(
        self, ctx: Context, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
    ) -> list[Message]:
        call_args, call_kwargs = self.merged(args, kwargs)
        task = ctx.task(self.task)
        if ctx.check_arguments and task.typing:
            task._check_arguments(call_args, call_kwargs)
        return [
            task.build_message(
                call_args,
                call_kwargs,
                parent_id=ctx.parent_id,
                root_id=ctx.root_id,
                **self.options,
            )
        ]

    def _apply(self, app: Celeriac, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        return run_task(app, self, args, kwargs)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _copy_options(options: Mapping[str, Any]) -> dict[str, Any]:
    copy = dict(options)
    for key in ("link", "link_error"):
        if key in copy:
            copy[key] = [s.clone() for s in copy[key]]
    if "headers" in copy:
        copy["headers"] = dict(copy["headers"])
    return copy


def _options_to_dict(options: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(options)
    for key in ("link", "link_error"):
        if key in out:
            out[key] = [s.to_dict() for s in out[key]]
    return out


def maybe_signature(value: Any, app: Celeriac | None = None) -> Signature:
    """A signature from a signature (as is) or its ``to_dict()`` form."""
    if isinstance(value, Signature):
        return value
    if isinstance(value, Mapping):
        return Signature.from_dict(value, app)
    raise TypeError(f"expected a signature (task.s(...)) or its dict, not {value!r}")


def signature(
    task: Any,
    args: Iterable[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    immutable: bool = False,
    app: Celeriac | None = None,
    **extra_options: Any,
) -> Signature:
    """``signature("proj.add", (1, 2), queue="q")``; also accepts a signature or its dict."""
    if isinstance(task, Signature):
        return task.clone(tuple(args or ()), kwargs, **{**(options or {}), **extra_options})
    if isinstance(task, Mapping):
        return Signature.from_dict(task, app)
    return Signature(task, args, kwargs, options, immutable, app, **extra_options)


#: ``subtask_type`` -> class, filled in by the workflow classes.
_TYPES: dict[str, type[Signature]] = {}


_Workflow = TypeVar("_Workflow", bound=type["Signature"])


def register_type(cls: _Workflow) -> _Workflow:
    """Make ``from_dict`` rebuild this workflow type (the class is returned as it is)."""
    assert cls.subtask_type is not None
    _TYPES[cls.subtask_type] = cls
    return cls


__all__ = [
    "OPTIONS",
    "SPREAD",
    "STARTING",
    "Signature",
    "maybe_signature",
    "register_type",
    "signature",
]
