"""``chord``: a group (the header) whose results, in order, go to one callback (the body).

The header is sent with the body in each member's ``Message.chord``; the
worker that finishes the last member (the backend's atomic
``chord_part_done``) sends the body with the results in order or, if a member
failed, stores that failure as the body's result and sends the body's errbacks
once (see :mod:`celeriac.canvas.flow`). No task polls for the header.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError
from ..message import Message
from ..result import GroupResult
from .context import Context
from .eager import fail_chord, failed
from .group import group
from .signature import Result, Signature, maybe_signature, register_type
from .workflows import _Workflow, without_start

if TYPE_CHECKING:
    from ..app import Celeriac


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

    def __call__(self, body: Any = None, **options: Any) -> Any:
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
        self._body()._push_defaults(without_start(spread))

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
        if not ctx.app.backend.stores_results:
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
        call_args, call_kwargs = self.merged(args, kwargs)
        header = self.header._apply(app, call_args, call_kwargs)
        failure = next((r for r in header.results if failed(r)), None)
        if failure is not None:
            result = fail_chord(app, self._body(), failure)
        else:
            result = self._body()._apply(app, (header.get(),), {})
        result.parent = header
        return result


__all__ = ["chord"]
