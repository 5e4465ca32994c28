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

This module holds what they share; each lives in its own module
(:mod:`~celeriac.canvas.chain`, :mod:`~celeriac.canvas.group`,
:mod:`~celeriac.canvas.chord`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .signature import SPREAD, STARTING, Signature, maybe_signature

if TYPE_CHECKING:
    from ..app import Celeriac

_MEMBERSHIP = ("group_id", "group_index", "chord")  # set on the task that completes a member


def signatures(tasks: tuple[Any, ...], app: Celeriac | None) -> list[Signature]:
    """``chain(a, b)`` and ``chain([a, b])`` (or a generator) mean the same."""
    if len(tasks) == 1 and not isinstance(tasks[0], (Signature, Mapping)):
        tasks = tuple(tasks[0])
    return [maybe_signature(t, app) for t in tasks]


class _Workflow(Signature):
    """What chain, group and chord share: options that apply to the tasks inside."""

    is_workflow = True

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


def without_start(defaults: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in defaults.items() if k not in STARTING}


__all__ = ["signatures", "without_start"]
