"""The Redis broker's strings: delivery tags, stored entries, dead letters, fetch calls.

An entry is a message in one string, written compact::

    <kind><deliveries>:<order><sent>:<id><body>

- ``kind``, one byte: ``a``..``j`` for priority 0..9 with the id a lowercase UUID
  (what ``delay()`` gives every task) held as its 16 bytes; ``A``..``J`` for
  priority 0..9 with any other id, as text: ``<id length>:<id>``;
- ``deliveries``, decimal, then ``:``;
- ``order``, 8 bytes big-endian: the microsecond it became ready (FIFO across
  queues compares it), by the producer's clock for a single message due now, by
  the server's otherwise;
- ``sent``, decimal microseconds from the message's ``sent_at`` to its order,
  then ``:``; empty when the body holds ``sent_at`` itself. A producer whose
  broker keeps ``sent_at`` (:attr:`~celeriac.brokers.base.Broker.keeps_sent_at`)
  leaves it out of the body, and the delivery hands it back: a delivered body
  reads the same, and ``"sent_at":1796684722.1048124,`` (30 bytes of JSON) is
  kept as one or a few digits. A rewrite of the order (a delayed message
  promoted, one given back with a delay) keeps the sent time.

A queued no-op task's entry went from 133 bytes to 76 this way: the id is 16
bytes instead of 36 plus its length, the order 8 instead of 16 digits, and the
body has no ``sent_at``. Binary order and id keep the header fixed-width where
it is read most (every fetch compares orders and rewrites the count) and make
no text to parse; an id that is not a canonical UUID keeps its exact text.

Entries of earlier versions start with a digit, ``"<priority>:<deliveries>:
<order>:<id length>:<id><body>"``, and are read, leased, acked, moved,
dead-lettered and browsed as before (``lua/_lib.lua`` reads both; a rewrite
keeps an entry's layout). A worker of an earlier version reads only that
layout and dead-letters a compact entry as malformed: upgrade workers before
producers (dead letters can be requeued once they are).

A tag is ``"<queue length>:<queue>:<sequence>:<consumer>"`` and a dead letter
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


def entry_head(priority: int, task_id: str) -> tuple[bytes, bytes]:
    """The kind byte and id part of a new entry (``lua/publish.lua`` adds the rest)."""
    if len(task_id) == 36 and task_id[8] == task_id[13] == task_id[18] == task_id[23] == "-":
        digits = task_id.replace("-", "")
        try:
            raw = bytes.fromhex(digits)
        except ValueError:
            raw = b""
        if len(raw) == 16 and raw.hex() == digits:  # canonical: it reads back the same
            return _KINDS[priority], raw
    text = task_id.encode()
    return _TEXT_KINDS[priority], b"%d:%b" % (len(text), text)


_KINDS = [bytes((97 + p,)) for p in range(10)]  # a..j: the id is a UUID's 16 bytes
_TEXT_KINDS = [bytes((65 + p,)) for p in range(10)]  # A..J: the id is text


def new_entry(priority: int, order: int, sent: int | None, task_id: str, body: bytes) -> bytes:
    """A new entry, ready now (``sent``: its sent time in microseconds, None when the
    body holds it)."""
    kind, id_part = entry_head(priority, task_id)
    offset = b"" if sent is None else b"%d" % (order - sent)
    return b"%b0:%b%b:%b%b" % (kind, order.to_bytes(8, "big"), offset, id_part, body)


def order_of(entry: bytes) -> int:
    """An entry's order (microseconds)."""
    if entry[0] > 57:
        at = entry.index(b":") + 1
        return int.from_bytes(entry[at : at + 8], "big")
    return int(entry.split(b":", 3)[2])


def _delivery(tag: bytes, entry: bytes, revoked: Any) -> Delivery:
    kind = entry[0]
    if kind <= 57:
        return _earlier_delivery(tag, entry, revoked)
    a = entry.index(b":")
    b = entry.index(b":", a + 9)
    sent = entry[a + 9 : b]
    sent_at = None
    if sent:
        sent_at = (int.from_bytes(entry[a + 1 : a + 9], "big") - int(sent)) / 1e6
    if kind >= 97:
        end = b + 17
        if end > len(entry):
            raise ValueError("the id runs past the end of the entry")
        h = entry[b + 1 : end].hex()
        task_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        priority = kind - 97
    else:
        c = entry.index(b":", b + 1)
        end = c + 1 + int(entry[b + 1 : c])
        if end > len(entry):
            raise ValueError("the id runs past the end of the entry")
        task_id = entry[c + 1 : end].decode()
        priority = kind - 65
    text = tag.decode()
    return Delivery(
        task_id,
        queue_of(text),
        priority,
        entry[end:],
        text,
        int(entry[1:a]),
        bool(revoked),
        sent_at,
    )


def _earlier_delivery(tag: bytes, entry: bytes, revoked: Any) -> Delivery:
    """An entry of the earlier layout, written by producers of earlier versions."""
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
    return DeadLetter(
        d.id, queue, d.priority, d.body, reason, d.deliveries, dead_at, sent_at=d.sent_at
    )


def _raw_id(entry: bytes) -> str:
    """What a malformed entry of the earlier layout gives as its id, as escaped text
    ("" when nothing)."""
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
    "entry_head",
    "fetch_args",
    "fetched",
    "new_entry",
    "order_of",
    "queue_of",
]
