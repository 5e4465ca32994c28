"""What the pages and the API read from the store: task lists, a task, workers, figures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from .search import TRIGRAM, escape_like, scan_clause, search_clause
from .store import Store, decode_task

LIST_COLUMNS = (
    "id, name, state, args, kwargs, result, exception, worker, queue, seen, updated, "
    "received, started, succeeded, failed, runtime, retries, parent_id, root_id, timeline"
)
MISSED_BEATS = 3


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """A page of the task list: filters, a time range, free-text search, and paging.

    ``since`` and ``until`` (Unix timestamps) bound when a task was first seen
    (sent, or received when the producer sends no events): the time the list is
    ordered by, so a range is one index scan. ``since`` is inclusive, ``until``
    exclusive.
    """

    state: str = ""
    name: str = ""
    worker: str = ""
    queue: str = ""
    search: str = ""
    limit: int = 50
    offset: int = 0
    since: float | None = None
    until: float | None = None

    def where(self, store: Store, search: bool = True) -> tuple[str, dict[str, Any]]:
        """The WHERE clause (empty without filters) and its parameters."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        for column in ("state", "name", "worker", "queue"):
            value = getattr(self, column)
            if value:
                clauses.append(f"{column} = :{column}")
                params[column] = value
        if self.since is not None:
            clauses.append("seen >= :since")
            params["since"] = self.since
        if self.until is not None:
            clauses.append("seen < :until")
            params["until"] = self.until
        if self.search and search:
            clause, found = search_clause(store.db, store.tables, store.search_index, self.search)
            clauses.append(clause)
            params.update(found)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


# A term in most rows fills its page from the newest few thousand rows faster than
# the index lists every row holding it: look there first (see list_tasks).
RECENT_WINDOW = 5000


def _recent_page(store: Store, flt: TaskFilter) -> list[dict[str, Any]] | None:
    """The page of a search from the newest rows alone, or None when they do not fill it.

    A full page there is the true page: every match outside the window is older."""
    where, params = flt.where(store, search=False)
    rows = store.query(
        f"SELECT {LIST_COLUMNS} FROM (SELECT {LIST_COLUMNS} FROM {store.tables.tasks}{where} "
        f"ORDER BY seen DESC LIMIT :window) recent WHERE {scan_clause(store.db)} "
        "ORDER BY seen DESC LIMIT :limit OFFSET :offset",
        {
            **params,
            "window": RECENT_WINDOW,
            "like": "%" + escape_like(flt.search) + "%",
            "term": flt.search,
            "limit": flt.limit,
            "offset": flt.offset,
        },
    )
    return [decode_task(row) for row in rows] if len(rows) == flt.limit else None


def list_tasks(store: Store, flt: TaskFilter) -> list[dict[str, Any]]:
    """Tasks matching ``flt``, newest first, one page."""
    if len(flt.search) >= TRIGRAM:
        page = _recent_page(store, flt)
        if page is not None:
            return page
    where, params = flt.where(store)
    rows = store.query(
        f"SELECT {LIST_COLUMNS} FROM {store.tables.tasks}{where} "
        "ORDER BY seen DESC LIMIT :limit OFFSET :offset",
        {**params, "limit": flt.limit, "offset": flt.offset},
    )
    return [decode_task(row) for row in rows]


def get_task(store: Store, task_id: str) -> dict[str, Any] | None:
    """One task with its children (tasks whose parent it is)."""
    tasks = store.tables.tasks
    row = store.query_one(f"SELECT * FROM {tasks} WHERE id = :id", {"id": task_id})
    if row is None:
        return None
    task = decode_task(row)
    task["children"] = [
        dict(r)
        for r in store.query(
            f"SELECT id, name, state FROM {tasks} WHERE parent_id = :id ORDER BY seen LIMIT 200",
            {"id": task_id},
        )
    ]
    return task


def task_types(store: Store) -> list[str]:
    """Every task name seen (an index-only scan of ``tasks_name``)."""
    rows = store.query(
        f"SELECT DISTINCT name FROM {store.tables.tasks} WHERE name IS NOT NULL ORDER BY name"
    )
    return [str(r["name"]) for r in rows]


def workers(store: Store, now: float | None = None) -> list[dict[str, Any]]:
    """Workers from their heartbeats: online while heard from within three beats."""
    now = time.time() if now is None else now
    found = []
    for row in store.query(f"SELECT * FROM {store.tables.workers} ORDER BY hostname"):
        info = orjson.loads(row["info"])
        alive = bool(row["online"]) and now - row["last_seen"] <= row["freq"] * MISSED_BEATS
        found.append(
            {
                **info,
                "hostname": row["hostname"],
                "alive": alive,
                "last_seen": row["last_seen"],
                "age": max(0.0, now - row["last_seen"]),
            }
        )
    return found


def _percentile(store: Store, since: float, count: int, fraction: float) -> float | None:
    if not count:
        return None
    row = store.query_one(
        f"SELECT runtime FROM {store.tables.tasks} WHERE finished >= :since "
        "AND runtime IS NOT NULL ORDER BY runtime LIMIT 1 OFFSET :offset",
        {"since": since, "offset": min(count - 1, int(count * fraction))},
    )
    return None if row is None else float(row["runtime"])


def overview(store: Store, window: float = 3600.0, now: float | None = None) -> dict[str, Any]:
    """The last ``window`` seconds: per-minute throughput, failure rate, runtime percentiles."""
    now = time.time() if now is None else now
    since = now - window
    tasks = store.tables.tasks
    per_minute: dict[int, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for row in store.query(
        f"SELECT {store.dialect.minute_of_finished} AS minute, state, COUNT(*) AS n "
        f"FROM {tasks} WHERE finished >= :since GROUP BY minute, state",
        {"since": since},
    ):
        bucket = per_minute.setdefault(int(row["minute"]), {})
        bucket[row["state"]] = int(row["n"])
        totals[row["state"]] = totals.get(row["state"], 0) + int(row["n"])
    first = int(since // 60) + 1
    series = [
        {
            "minute": m * 60,
            "succeeded": per_minute.get(m, {}).get("SUCCESS", 0),
            "failed": per_minute.get(m, {}).get("FAILURE", 0),
        }
        for m in range(first, int(now // 60) + 1)
    ]
    finished = sum(totals.values())
    timed = store.query_one(
        f"SELECT COUNT(*) AS n FROM {tasks} WHERE finished >= :since AND runtime IS NOT NULL",
        {"since": since},
    )
    count = int(timed["n"]) if timed else 0
    return {
        "window": window,
        "finished": finished,
        "succeeded": totals.get("SUCCESS", 0),
        "failed": totals.get("FAILURE", 0),
        "failure_rate": (totals.get("FAILURE", 0) / finished) if finished else 0.0,
        "throughput_per_minute": finished / (window / 60.0),
        "runtime": {
            f"p{int(q * 100)}": _percentile(store, since, count, q) for q in (0.5, 0.9, 0.99)
        },
        "series": series,
    }


def _seen_by(store: Store, flt: TaskFilter, seen_until: float) -> tuple[str, dict[str, Any]]:
    where, params = flt.where(store)
    joined = f"{where} AND seen <= :seen_until" if where else " WHERE seen <= :seen_until"
    return joined, {**params, "seen_until": seen_until}


def count_tasks(store: Store, flt: TaskFilter, seen_until: float) -> int:
    """How many tasks match ``flt`` among those first seen at or before ``seen_until``."""
    where, params = _seen_by(store, flt, seen_until)
    row = store.query_one(f"SELECT COUNT(*) AS n FROM {store.tables.tasks}{where}", params)
    return int(row["n"]) if row else 0


def task_batches(
    store: Store, flt: TaskFilter, seen_until: float, size: int = 1000
) -> Iterator[list[dict[str, Any]]]:
    """Every task matching ``flt`` first seen at or before ``seen_until``, newest first, in
    lists of ``size`` (id, name, args, kwargs, queue, state): one page in memory at a time.

    Pages follow the last row's (seen, id), not an offset: rows added or changed meanwhile
    neither shift a page nor come twice, and no page costs more than the first."""
    where, params = _seen_by(store, flt, seen_until)
    after: dict[str, Any] = {}
    while True:
        keyset = " AND (seen < :after_seen OR (seen = :after_seen AND id < :after_id))"
        rows = store.query(
            f"SELECT id, name, args, kwargs, queue, state, seen FROM {store.tables.tasks}"
            f"{where}{keyset if after else ''} ORDER BY seen DESC, id DESC LIMIT :size",
            {**params, **after, "size": size},
        )
        if not rows:
            return
        yield [decode_task(row) for row in rows]
        last = rows[-1]
        after = {"after_seen": last["seen"], "after_id": last["id"]}


def workflow_tasks(store: Store, root_id: str, limit: int) -> list[dict[str, Any]]:
    """The tasks of the workflow ``root_id`` started (it and those naming it their root),
    oldest first, at most ``limit`` + 1 (one more says the list was cut)."""
    rows = store.query(
        f"SELECT id, name, state, parent_id, root_id, seen FROM {store.tables.tasks} "
        "WHERE id = :root OR root_id = :root ORDER BY seen, id LIMIT :limit",
        {"root": root_id, "limit": limit + 1},
    )
    return [dict(row) for row in rows]
