"""From a signature or workflow to the messages that start it, sent in one batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..request import current_request
from .context import Context

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..message import Message
    from .signature import Result, Signature


def prepare(app: Celeriac, node: Signature) -> Result:
    """Pass workflow options down to the tasks and give every task its id."""
    node._push_defaults({})
    return node._freeze(app)


def build(
    app: Celeriac,
    node: Signature,
    args: Sequence[Any] = (),
    parent_id: str | None = None,
    root_id: str | None = None,
) -> list[Message]:
    """The messages that start ``node`` with these partial arguments (``node`` is consumed)."""
    prepare(app, node)
    return _messages(app, node, args, parent_id, root_id)


def _messages(
    app: Celeriac,
    node: Signature,
    args: Sequence[Any],
    parent_id: str | None,
    root_id: str | None,
) -> list[Message]:
    ctx = Context(app, parent_id, root_id or node._entry_id())
    return node._messages(ctx, args)


def send(app: Celeriac, node: Signature) -> Any:
    """Send a prepared copy of a signature or workflow; its result handle.

    Sent from inside a task, the messages name that task as parent and share its
    root; otherwise the first task sent is the root of the whole workflow.
    """
    result = prepare(app, node)
    current = current_request()
    parent_id = root_id = None
    if current is not None and current.id is not None:
        parent_id, root_id = current.id, current.root_id or current.id
    app.publish(_messages(app, node, (), parent_id, root_id))
    return result


__all__ = ["build", "prepare", "send"]
