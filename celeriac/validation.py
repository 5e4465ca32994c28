"""``@app.task(pydantic=True)``: arguments validated into the models their annotations
name, and a returned model stored as a dict, as Celery 5.5 does.

Only parameters annotated with a pydantic model (a ``BaseModel`` subclass) are
converted, from the dicts a message carries; others pass as they are. A value
that does not validate fails the task with pydantic's ``ValidationError``. Send
models as dicts (``task.delay(model.model_dump())``), as with Celery. Needs the
``pydantic`` extra; this module is loaded only for such tasks.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

from .exceptions import MissingExtraError

try:
    from pydantic import BaseModel
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingExtraError("pydantic", "pydantic") from exc


def _model(annotation: Any) -> type[BaseModel] | None:
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def validating(
    fun: Callable[..., Any],
    strict: bool = False,
    context: dict[str, Any] | None = None,
    dump_kwargs: dict[str, Any] | None = None,
) -> Callable[..., Any]:
    """``fun``, taking dicts for its model parameters and returning a model as a dict."""
    signature = inspect.signature(fun)
    try:
        hints = typing.get_type_hints(fun)
    except NameError:  # a model defined in a function: only unquoted annotations resolve
        hints = {name: p.annotation for name, p in signature.parameters.items()}
    models = {
        name: model
        for name in signature.parameters
        if (model := _model(hints.get(name))) is not None
    }
    dump = {"mode": "json", **(dump_kwargs or {})}

    @functools.wraps(fun)
    def run(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        for name, model in models.items():
            value = bound.arguments.get(name)
            if name in bound.arguments and not isinstance(value, model):
                bound.arguments[name] = model.model_validate(value, strict=strict, context=context)
        result = fun(*bound.args, **bound.kwargs)
        return result.model_dump(**dump) if isinstance(result, BaseModel) else result

    return run


__all__ = ["validating"]
