"""Browsing a SQLite broker's queues: the waiting, delayed and reserved messages, paged.

Each page is a read through the state's partial index (see :mod:`.schema`):
waiting messages in the order workers take them (highest priority first, then
oldest; reversed for newest first), delayed ones by due time, reserved ones in
the order they were taken. Moving a message back to ready writes it again under
a new ``seq``, as a release does, so a tag handed out before never matches it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from ..brokers.capabilities import Kind, Listed
from .db import Database
from .schema import COPY, DELAYED, HELD, READY

_STATE: dict[str, int] = {"waiting": READY, "delayed": DELAYED, "reserved": HELD}
_ORDER = {
    ("waiting", False): "priority DESC, seq",
    ("waiting", True): "priority, seq DESC",
    ("delayed", False): "eta, seq",
    ("delayed", True): "eta DESC, seq DESC",
    ("reserved", False): "seq",
    ("reserved", True): "seq DESC",
}
_MINE = "state = :state AND queue = :queue AND id IN (SELECT value FROM json_each(:ids))"


class SQLiteBrowser:
    """Lists and acts on single messages of one SQLite broker file."""

    reserved_in_workers = False  # the broker records each message's holder

    def __init__(self, db: Database) -> None:
        self._db = db

    def messages(
        self, queue: str, kind: Kind, limit: int = 50, offset: int = 0, newest_first: bool = False
    ) -> list[Listed]:
        order = _ORDER[(kind, newest_first)]
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT id, priority, body, ready_at, eta, owner, deliveries FROM celeriac_messages"
                f" WHERE state = ? AND queue = ? ORDER BY {order} LIMIT ? OFFSET ?",
                (_STATE[kind], queue, limit, offset),
            ).fetchall()
        return [
            Listed(id_, queue, priority, bytes(body), kind, since=ready_at, eta=eta,
                   holder=owner, deliveries=deliveries)
            for id_, priority, body, ready_at, eta, owner, deliveries in rows
        ]  # fmt: skip

    def count(self, queue: str, kind: Kind) -> int:
        with self._db.read() as conn:
            (found,) = conn.execute(
                "SELECT count(*) FROM celeriac_messages WHERE state = ? AND queue = ?",
                (_STATE[kind], queue),
            ).fetchone()
        return int(found)

    def delete(self, queue: str, kind: Kind, ids: Sequence[str]) -> int:
        if kind == "reserved":
            raise ValueError("a reserved message is its holder's to delete: requeue it first")
        with self._db.write() as conn:
            deleted = conn.execute(
                f"DELETE FROM celeriac_messages WHERE {_MINE}", _params(queue, kind, ids)
            ).rowcount
        return int(deleted)

    def run_now(self, queue: str, ids: Sequence[str]) -> int:
        return self._to_ready(queue, "delayed", ids, "deliveries")

    def requeue(self, queue: str, ids: Sequence[str]) -> int:
        # the holder's delivery did not finish: it does not count
        return self._to_ready(queue, "reserved", ids, "max(deliveries - 1, 0)")

    def _to_ready(self, queue: str, kind: Kind, ids: Sequence[str], deliveries: str) -> int:
        params = {**_params(queue, kind, ids), "now": time.time()}
        with self._db.write() as conn:
            conn.execute(
                f"INSERT INTO celeriac_messages ({COPY}, state, ready_at, deliveries)"
                f" SELECT {COPY}, {READY}, :now, {deliveries} FROM celeriac_messages"
                f" WHERE {_MINE} ORDER BY seq",
                params,
            )
            moved = conn.execute(f"DELETE FROM celeriac_messages WHERE {_MINE}", params).rowcount
        return int(moved)


def _params(queue: str, kind: Kind, ids: Sequence[str]) -> dict[str, Any]:
    return {"queue": queue, "state": _STATE[kind], "ids": json.dumps(list(ids))}


__all__ = ["SQLiteBrowser"]
