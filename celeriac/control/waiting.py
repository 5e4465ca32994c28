"""What waits in a queue, message by message: ``celeriac queues show`` and the dashboard.

Each message as plain data: its task, arguments, where it is (waiting since,
delayed until, reserved by) and, for a delayed one, why (its countdown or eta, a
retry, its rate limit's slot). Built on the broker's ``browse``
(:class:`~celeriac.brokers.capabilities.QueueBrowser`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..brokers.capabilities import KINDS, Kind, Listed, QueueBrowser
from ..exceptions import CapabilityUnavailable
from ..message import decode
from ..middleware.rate_limit import SLOT_HEADER
from ..urls import redact

if TYPE_CHECKING:
    from ..app import Celeriac

PAGE_MAX = 500  # messages per page at most


def browser(app: Celeriac) -> QueueBrowser:
    """The broker's ``browse``, or an error that says which brokers have one."""
    broker = app.broker
    if broker.browse is None:
        raise CapabilityUnavailable(
            f"broker {redact(broker.url)} ({type(broker).__name__}) cannot list a queue's "
            "messages without taking them: browsing what waits needs a Redis, SQLite or "
            "memory broker (queue counts stay available: celeriac queues)"
        )
    return broker.browse


def check_kind(kind: str) -> Kind:
    """``kind`` when it is one of waiting, delayed, reserved; a ValueError that says so."""
    for known in KINDS:
        if kind == known:
            return known
    raise ValueError(f"no kind {kind!r} of message: use one of {', '.join(KINDS)}")


def describe(app: Celeriac, listed: Listed) -> dict[str, Any]:
    """One listed message as plain data, decoded where it can be."""
    info: dict[str, Any] = {
        "id": listed.id,
        "queue": listed.queue,
        "kind": listed.kind,
        "priority": listed.priority,
        "deliveries": listed.deliveries,
        "since": listed.since,
        "eta": listed.eta,
        "holder": listed.holder,
    }
    try:
        message = decode(listed.body, app.codec, listed)
    except Exception as exc:  # shown as it is: an operator may want to delete it
        info["undecodable"] = str(exc)
        return info
    info.update(
        task=message.task, args=list(message.args), kwargs=message.kwargs, retries=message.retries
    )
    if listed.kind == "delayed":
        if SLOT_HEADER in message.headers:
            info["why"] = "rate limit"
        elif message.retries:
            info["why"] = f"retry {message.retries}"
        else:
            info["why"] = "countdown / eta"
    return info


def waiting_page(
    app: Celeriac,
    queue: str,
    kind: str = "waiting",
    limit: int = 50,
    offset: int = 0,
    newest_first: bool = False,
) -> dict[str, Any]:
    """A page of a queue's messages of ``kind``, with how many there are in all."""
    checked = check_kind(kind)
    if not 1 <= limit <= PAGE_MAX or offset < 0:
        raise ValueError(f"a page holds 1 to {PAGE_MAX} messages from an offset >= 0")
    browse = browser(app)
    listed = browse.messages(queue, checked, limit, offset, newest_first)
    return {
        "queue": queue,
        "kind": checked,
        "count": browse.count(queue, checked),
        "offset": offset,
        "newest_first": newest_first,
        "messages": [describe(app, m) for m in listed],
    }


__all__ = ["PAGE_MAX", "browser", "check_kind", "describe", "waiting_page"]
