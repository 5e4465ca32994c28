"""How one event changes a task's row, and a worker's.

Events of one task come from several processes (the producer's ``task-sent``,
the worker's ``task-received``...), so they may arrive out of order. A row's
state is that of its latest event by timestamp, ties broken by how far along
the life of a task the state is; each event also fills its own columns, so an
early ``task-sent`` arriving last adds the arguments without undoing SUCCESS.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..events.event import Event

FINAL_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED", "REJECTED"})
TIMELINE_MAX = 50  # entries kept per task: a task retried forever stays bounded

_RANK = {
    "PENDING": 0, "RECEIVED": 1, "STARTED": 2, "RETRY": 3,
    "SUCCESS": 4, "FAILURE": 4, "REVOKED": 4, "REJECTED": 4,
}  # fmt: skip

# event type -> the timestamp column it sets
_STAMP = {
    "task-sent": "sent",
    "task-received": "received",
    "task-started": "started",
    "task-succeeded": "succeeded",
    "task-failed": "failed",
    "task-retried": "retried",
    "task-revoked": "revoked",
}

# Event attribute -> column, copied when the event carries a value.
_COPIED = {
    "name": "name",
    "args": "args",
    "kwargs": "kwargs",
    "result": "result",
    "exception": "exception",
    "traceback": "traceback",
    "queue": "queue",
    "priority": "priority",
    "runtime": "runtime",
    "retries": "retries",
    "parent_id": "parent_id",
    "root_id": "root_id",
    "eta": "eta",
    "expires": "expires",
}


# Fields of an event (beyond its columns) kept with its timeline entry: what the task
# page says about why a task is in its state.
NOTED = ("reason", "terminated", "dead_letter", "sent_as", "copy_of", "expired")


def _new_row(event: Event) -> dict[str, Any]:
    return {
        "id": event.task_id,
        "state": event.state or "PENDING",
        "seen": event.timestamp,
        "updated": event.timestamp,
        "rank": -1,
        "timeline": [],
    }


def merge_event(row: dict[str, Any] | None, event: Event) -> dict[str, Any]:
    """The task row after ``event`` (a new dict; ``row`` may be None for a new task)."""
    row = dict(row) if row is not None else _new_row(event)
    state = event.state or row["state"]
    rank = _RANK.get(state, 0)
    if (event.timestamp, rank) >= (row["updated"], row["rank"]):
        row["state"], row["updated"], row["rank"] = state, event.timestamp, rank
        if state in FINAL_STATES:
            row["finished"] = event.timestamp
    row["seen"] = min(row["seen"], event.timestamp)
    for attr, column in _COPIED.items():
        value = getattr(event, attr)
        if value is not None:
            row[column] = value
    if event.hostname and event.type != "task-sent":
        row["worker"] = event.hostname
    stamp = _STAMP.get(event.type)
    if stamp:
        row[stamp] = event.timestamp
    entry: list[Any] = [event.type, event.timestamp, event.hostname]
    note = {key: event.extra[key] for key in NOTED if event.extra.get(key) not in (None, "")}
    if note:  # why: a revocation's reason, a dead letter's queue, a copy's other id
        entry.append(note)
    timeline = sorted([*row["timeline"], entry], key=lambda e: e[1])
    row["timeline"] = timeline[-TIMELINE_MAX:]
    return row


def merge_worker(event: Event) -> tuple[str, float, int, float, str]:
    """The worker row (hostname, last_seen, online, freq, info) from its newest event."""
    info = event.to_dict()
    info.pop("position", None)
    online = 0 if event.type == "worker-offline" else 1
    return (
        str(event.hostname),
        event.timestamp,
        online,
        float(event.freq or 2.0),
        orjson.dumps(info, default=repr).decode(),
    )
