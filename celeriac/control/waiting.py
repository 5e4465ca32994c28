"""What waits in a queue, message by message: ``celeriac queues show`` and the dashboard.

Each message as plain data: its task, arguments, where it is (waiting since,
delayed until, reserved by) and, for a delayed one, why (its countdown or eta, a
retry, its rate limit's slot). Built on the broker's ``browse``
(:class:`~celeriac.brokers.capabilities.QueueBrowser`); where only the workers know
which messages they hold (its ``reserved_in_workers``: RabbitMQ), reserved messages
are listed and acted on through the workers instead (:mod:`.held`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from ..brokers.capabilities import KINDS, Kind, Listed, QueueBrowser
from ..exceptions import CapabilityUnavailable
from ..message import decode
from ..middleware.rate_limit import SLOT_HEADER
from ..urls import redact
from .held import SOURCE, HeldByWorkers

if TYPE_CHECKING:
    from ..app import Celeriac

PAGE_MAX = 500  # messages per page at most
Action = Literal["delete", "run-now", "requeue"]


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
    page: dict[str, Any] = {
        "queue": queue,
        "kind": checked,
        "offset": offset,
        "newest_first": newest_first,
    }
    if checked == "reserved" and browse.reserved_in_workers:
        count, entries = HeldByWorkers(app).page(queue, limit, offset, newest_first)
        return {**page, "count": count, "messages": entries, "source": SOURCE}
    listed = browse.messages(queue, checked, limit, offset, newest_first)
    count = browse.count(queue, checked)
    return {**page, "count": count, "messages": [describe(app, m) for m in listed]}


def act(
    app: Celeriac, action: Action, queue: str, ids: Sequence[str], kind: str = "waiting"
) -> int:
    """Delete (messages of ``kind``), run now (delayed ones) or requeue (reserved ones)
    single messages of ``queue`` by task id; how many it acted on.

    Where only the workers know what they hold, deleting a reserved message revokes it
    and requeueing asks its worker to give it back (:mod:`.held`). Elsewhere a reserved
    message is not deleted: requeue it, then delete it.
    """
    browse = browser(app)
    checked = check_kind(kind)
    held = HeldByWorkers(app) if browse.reserved_in_workers else None
    if action == "delete":
        if checked == "reserved" and held is not None:
            return held.revoke(queue, ids)
        return browse.delete(queue, checked, ids)
    if action == "run-now":
        return browse.run_now(queue, ids)
    if held is not None:
        return held.give_back(queue, ids)
    return browse.requeue(queue, ids)


__all__ = ["PAGE_MAX", "Action", "act", "browser", "check_kind", "describe", "waiting_page"]
