"""Browsing a Redis broker's queues: waiting, delayed and reserved messages, paged.

One script call per page or action, on the queue's keys (one hash tag, so one
Cluster slot). Waiting messages are listed in the order workers take them
(priority 9 first, the oldest first within one); delayed ones by due time;
reserved ones by lease deadline. Deleting, running now and requeueing read a
queue's list or set whole: they are for an operator's clicks, not the hot path.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..brokers.capabilities import Kind, Listed
from .entries import delivery_of, order_of, queue_of
from .manage import RedisAdmin
from .scripts import script

_BROWSE = script("browse")


class RedisBrowser:
    """Lists and acts on single messages of one Redis broker's queues."""

    reserved_in_workers = False  # the broker records each message's holder

    def __init__(self, admin: RedisAdmin) -> None:
        self._admin = admin

    def messages(
        self, queue: str, kind: Kind, limit: int = 50, offset: int = 0, newest_first: bool = False
    ) -> list[Listed]:
        if limit <= 0:
            return []
        flat = self._admin.run(
            _BROWSE, queue, ("list", kind, offset, limit, "1" if newest_first else "0")
        )
        found = []
        for entry, extra in zip(flat[::2], flat[1::2], strict=True):
            tag = extra.decode() if kind == "reserved" else ""
            d = delivery_of(tag.encode(), entry)
            order = order_of(entry)
            found.append(
                Listed(
                    d.id, queue, d.priority, d.body, kind,
                    since=order / 1e6 if kind == "waiting" else None,
                    eta=float(extra) if kind == "delayed" else None,
                    holder=_consumer(tag) if kind == "reserved" else None,
                    deliveries=d.deliveries,
                    sent_at=d.sent_at,
                )
            )  # fmt: skip
        return found

    def count(self, queue: str, kind: Kind) -> int:
        return int(self._admin.run(_BROWSE, queue, ("count", kind)))

    def delete(self, queue: str, kind: Kind, ids: Sequence[str]) -> int:
        if kind == "reserved":
            raise ValueError("a reserved message is its holder's to delete: requeue it first")
        return self._act("delete", queue, kind, ids)

    def run_now(self, queue: str, ids: Sequence[str]) -> int:
        return self._act("run_now", queue, "delayed", ids)

    def requeue(self, queue: str, ids: Sequence[str]) -> int:
        return self._act("requeue", queue, "reserved", ids)

    def _act(self, mode: str, queue: str, kind: Kind, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        channel = self._admin.channel(queue)
        return int(self._admin.run(_BROWSE, queue, (mode, kind, channel, *ids)))


def _consumer(tag: str) -> str:
    """The consumer in a tag ``"<queue length>:<queue>:<sequence>:<consumer>"``."""
    queue = queue_of(tag)
    rest = tag[len(str(len(queue))) + 1 + len(queue) + 1 :]
    return rest.partition(":")[2]


__all__ = ["RedisBrowser"]
