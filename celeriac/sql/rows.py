"""Rows of the SQL result backend: TaskMeta to columns and back, and transient errors.

``result``, ``args`` and ``kwargs`` are each encoded with the app's serializer
(a one-key document, ``{"result": ...}`` in JSON), so a person reading the table
sees the values; times are naive UTC ``DATETIME``\\s, as Celery stores them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from .. import states
from ..backends.base import TaskMeta
from ..serialization import Codec, to_wire
from .schema import sa

CHUNK = 500  # rows or ids per statement: far below every database's parameter limit
_ENCODED = ("result", "args", "kwargs")
_PLAIN = ("traceback", "name", "worker", "retries", "queue", "parent_id", "root_id", "group_id")
_TIMES = ("date_done", "date_received", "date_started")


def to_time(timestamp: float | None) -> datetime | None:
    """A UNIX timestamp as a naive UTC datetime."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).replace(tzinfo=None)


def from_time(value: datetime | None) -> float | None:
    """A naive UTC datetime as a UNIX timestamp."""
    return None if value is None else value.replace(tzinfo=timezone.utc).timestamp()


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class RowCodec:
    """Turns records into rows of the task table, and rows back into records."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    def rows(self, metas: Sequence[TaskMeta], expires_at: datetime) -> list[dict[str, Any]]:
        """One row per task id (the last record of an id wins: one statement sets it once)."""
        rows = {meta.task_id: self.row(meta, expires_at) for meta in metas}
        return list(rows.values())

    def row(self, meta: TaskMeta, expires_at: datetime) -> dict[str, Any]:
        row: dict[str, Any] = {"task_id": meta.task_id, "status": meta.state}
        for name in _ENCODED:
            row[name] = self._encode(name, getattr(meta, name))
        for name in _PLAIN:
            row[name] = getattr(meta, name)
        for name in _TIMES:
            row[name] = to_time(getattr(meta, name))
        row["children"] = json.dumps(meta.children) if meta.children else None
        row["expires_at"] = expires_at
        return row

    def meta(self, row: Any) -> TaskMeta:
        values = row._mapping
        meta = TaskMeta(values["task_id"], values["status"])
        for name in _ENCODED:
            setattr(meta, name, self._decode(name, values[name]))
        for name in _PLAIN:
            setattr(meta, name, values[name])
        for name in _TIMES:
            setattr(meta, name, from_time(values[name]))
        meta.children = json.loads(values["children"]) if values["children"] else []
        return meta

    def _encode(self, name: str, value: Any) -> bytes | None:
        if value is None:
            return None
        return self.codec.dumps({name: to_wire(value, name) if self.codec.needs_tags else value})

    def _decode(self, name: str, data: bytes | None) -> Any:
        return None if data is None else self.codec.loads(bytes(data))[name]


def is_ready(row: dict[str, Any]) -> bool:
    return row["status"] in states.READY_STATES


def is_transient(exc: sa.exc.DBAPIError) -> bool:
    """A deadlock, serialization failure or lock timeout: the transaction rolled back."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in ("40001", "40P01"):  # psycopg
        return True
    if getattr(orig, "pgcode", None) in ("40001", "40P01"):  # psycopg2
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in (1205, 1213):  # MySQL: lock wait timeout, deadlock
        return True
    return "database is locked" in str(orig)  # SQLite, past its busy timeout
