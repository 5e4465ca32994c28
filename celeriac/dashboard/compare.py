"""What operators compare: per task name over the last hour (rate, failure share, p50 and
p95 runtime), and the failures grouped by task, exception type and message.

Each is a read of the tasks finished in the window, through the ``finished`` index;
percentiles are one ordered read per task name (the busiest ``TOP_NAMES`` names).
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from .store import Store

TOP_NAMES = 20
TOP_FAILURES = 20


def _by_name(store: Store) -> sa.Select[Any]:
    tasks = store.tables.tasks.c
    failed = sa.func.sum(sa.case((tasks.state == "FAILURE", 1), else_=0)).label("failed")
    return (
        sa.select(tasks.name, sa.func.count().label("n"), failed)
        .where(tasks.finished >= sa.bindparam("since"), tasks.name.is_not(None))
        .group_by(tasks.name)
        .order_by(sa.func.count().desc(), tasks.name)
        .limit(TOP_NAMES)
    )


def _runtime_at(store: Store) -> sa.Select[Any]:
    tasks = store.tables.tasks.c
    return (
        sa.select(tasks.runtime)
        .where(
            tasks.finished >= sa.bindparam("since"),
            tasks.name == sa.bindparam("name"),
            tasks.runtime.is_not(None),
        )
        .order_by(tasks.runtime)
        .limit(1)
        .offset(sa.bindparam("offset"))
    )


def _timed_count(store: Store) -> sa.Select[Any]:
    tasks = store.tables.tasks.c
    return sa.select(sa.func.count().label("n")).where(
        tasks.finished >= sa.bindparam("since"),
        tasks.name == sa.bindparam("name"),
        tasks.runtime.is_not(None),
    )


def by_task_name(
    store: Store, window: float = 3600.0, now: float | None = None
) -> list[dict[str, Any]]:
    """The busiest task names of the last ``window`` seconds: finished, per minute, failure
    share, runtime p50 and p95."""
    since = (time.time() if now is None else now) - window
    rows = store.query(store.prepared("by name", lambda: _by_name(store)), {"since": since})
    at = store.prepared("runtime at", lambda: _runtime_at(store))
    timed = store.prepared("timed by name", lambda: _timed_count(store))
    found = []
    for row in rows:
        name, finished, failed = row["name"], int(row["n"]), int(row["failed"] or 0)
        counted = store.query_one(timed, {"since": since, "name": name})
        count = int(counted["n"]) if counted else 0
        percentiles: dict[str, float | None] = {}
        for label, fraction in (("p50", 0.5), ("p95", 0.95)):
            value = None
            if count:
                params = {
                    "since": since,
                    "name": name,
                    "offset": min(count - 1, int(count * fraction)),
                }
                hit = store.query_one(at, params)
                value = None if hit is None else float(hit["runtime"])
            percentiles[label] = value
        found.append(
            {
                "name": name,
                "finished": finished,
                "per_minute": finished / (window / 60.0),
                "failed": failed,
                "failure_share": failed / finished if finished else 0.0,
                **percentiles,
            }
        )
    return found


def _failures(store: Store) -> sa.Select[Any]:
    tasks = store.tables.tasks.c
    return (
        sa.select(
            tasks.name,
            tasks.exception,
            sa.func.count().label("n"),
            sa.func.max(tasks.finished).label("last"),
            sa.func.max(tasks.id).label("example"),
        )
        .where(tasks.finished >= sa.bindparam("since"), tasks.state == "FAILURE")
        .group_by(tasks.name, tasks.exception)
        .order_by(sa.func.count().desc())
        .limit(TOP_FAILURES)
    )


def failures_grouped(
    store: Store, window: float = 3600.0, now: float | None = None
) -> list[dict[str, Any]]:
    """The failures of the last ``window`` seconds grouped by task name and exception (type
    and message), the most frequent first, each with its latest time and one task id."""
    since = (time.time() if now is None else now) - window
    rows = store.query(store.prepared("failures", lambda: _failures(store)), {"since": since})
    found = []
    for row in rows:
        exception = str(row["exception"] or "")
        kind = exception.partition("(")[0] or "-"
        found.append(
            {
                "name": row["name"],
                "exception": exception,
                "type": kind,
                "count": int(row["n"]),
                "last": row["last"],
                "example": row["example"],
            }
        )
    return found


__all__ = ["by_task_name", "failures_grouped"]
