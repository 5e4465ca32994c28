"""The Redis broker's strings: delivery tags, stored entries, dead letters, fetch calls.

Layouts (see :mod:`celeriac.redis.broker`): an entry is
``"<priority>:<deliveries>:<order>:<id length>:<id><body>"``, a tag
``"<queue length>:<queue>:<sequence>:<consumer>"`` and a dead letter
``"<ms>:<reason length>:<reason><entry>"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..brokers.base import DeadLetter
from ..message import Delivery

PROMOTE_BATCH = 1000  # due delayed messages promoted per queue per fetch


def queue_of(tag: str) -> str:
    """The queue a delivery tag belongs to ("" for a string that is not one of our tags)."""
    length, _, rest = tag.partition(":")
    if not length.isdigit() or rest[int(length) : int(length) + 1] != ":":
        return ""
    return rest[: int(length)]


def consumer_of(tag: str) -> str:
    """The consumer holding a delivery tag (the part after the sequence number)."""
    length, _, rest = tag.partition(":")
    return rest[int(length) + 1 :].partition(":")[2]


def by_queue(tags: Sequence[str]) -> dict[str, list[str]]:
    """Tags grouped by queue; strings that are not tags are ignored, like unknown tags."""
    groups: dict[str, list[str]] = {}
    for tag in tags:
        queue = queue_of(tag)
        if queue:
            groups.setdefault(queue, []).append(tag)
    return groups


def _delivery(tag: bytes, entry: bytes, revoked: Any) -> Delivery:
    a = entry.index(b":", 2)
    b = entry.index(b":", a + 1)
    c = entry.index(b":", b + 1)
    end = c + 1 + int(entry[b + 1 : c])
    if end > len(entry):
        raise ValueError("the id length runs past the end of the entry")
    text = tag.decode()
    return Delivery(
        entry[c + 1 : end].decode(),
        queue_of(text),
        entry[0] - 48,
        entry[end:],
        text,
        int(entry[2:a]),
        bool(revoked),
    )


def delivery_of(tag: bytes, entry: bytes) -> Delivery:
    """A stored entry read as a delivery (under ``tag``, which may be empty), not revoked."""
    return _delivery(tag, entry, False)


def dead_letter_of(queue: str, record: bytes) -> DeadLetter:
    """A dead letter; one whose entry cannot be parsed (written to the queue by
    another program) comes back whole as its body, with its id as escaped text."""
    try:
        a = record.index(b":")
        b = record.index(b":", a + 1)
        reason_end = b + 1 + int(record[a + 1 : b])
        dead_at = int(record[:a]) / 1000.0
        reason = record[b + 1 : reason_end].decode("utf-8", "replace")
    except ValueError:
        return DeadLetter("", queue, 0, record, "not a dead letter record", 0, 0.0)
    entry = record[reason_end:]
    try:
        d = _delivery(b"0:", entry, 0)
    except (ValueError, IndexError):
        return DeadLetter(_raw_id(entry), queue, 0, entry, reason, 0, dead_at)
    return DeadLetter(d.id, queue, d.priority, d.body, reason, d.deliveries, dead_at)


def _raw_id(entry: bytes) -> str:
    """What a malformed entry gives as its id, as escaped text ("" when nothing)."""
    parts = entry.split(b":", 4)
    if len(parts) == 5 and parts[3].isdigit():
        return parts[4][: int(parts[3])].decode("utf-8", "backslashreplace")
    return ""


def fetch_args(
    queues: Sequence[str],
    consumer: str,
    limit: int,
    lease_seconds: float,
    wake_prefix: str,
    fetch_id: str,
    bound: tuple[Any, Any] = ("", ""),
) -> list[Any]:
    """The fetch script's arguments (``wake_prefix``: the wake channels' start on
    Cluster, "" elsewhere; ``fetch_id``: the same for a call sent again, see
    ``lua/fetch.lua``; ``bound``: take only what ranks before it)."""
    return [
        len(queues),
        consumer,
        limit,
        lease_seconds,
        PROMOTE_BATCH,
        *bound,
        wake_prefix,
        fetch_id,
        *queues,
    ]


def fetched(out: list[Any]) -> tuple[float | None, tuple[int, int] | None, list[Delivery]]:
    """Parse the fetch script's reply: wait hint, best head left, deliveries."""
    wait = float(out[0]) if out[0] else None
    head = (int(out[1]), int(out[2])) if out[1] else None
    return wait, head, [_delivery(*out[i : i + 3]) for i in range(3, len(out), 3)]


__all__ = [
    "PROMOTE_BATCH",
    "by_queue",
    "consumer_of",
    "dead_letter_of",
    "fetch_args",
    "fetched",
    "queue_of",
]
