"""What the pages and the API read from the store: task lists, a task, workers, figures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import orjson

from .store import Store, decode_task

LIST_COLUMNS = (
    "id, name, state, args, kwargs, result, exception, worker, queue, seen, updated, "
    "received, started, succeeded, failed, runtime, retries, parent_id, root_id, timeline"
)
MISSED_BEATS = 3


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """A page of the task list: filters, free-text search, and paging."""

    state: str = ""
    name: str = ""
    worker: str = ""
    queue: str = ""
    search: str = ""
    limit: int = 50
    offset: int = 0

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for column in ("state", "name", "worker", "queue"):
            value = getattr(self, column)
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.search:
            clauses.append(_search_clause(self.search))
            params.extend(_search_params(self.search))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


# The trigram index answers substrings of three characters or more; a shorter
# term is a scan of the text columns, bounded by the ``seen`` order and LIMIT.
_TRIGRAM = 3


# A term in most rows fills its page from the newest few thousand rows faster than
# the index lists every row holding it: look there first (see list_tasks).
RECENT_WINDOW = 5000
_SCAN = (
    "(name LIKE ? ESCAPE '\\' OR args LIKE ? ESCAPE '\\' OR kwargs LIKE ? ESCAPE '\\' "
    "OR result LIKE ? ESCAPE '\\' OR exception LIKE ? ESCAPE '\\' OR id = ?)"
)


def _search_clause(term: str) -> str:
    if len(term) >= _TRIGRAM:
        return (
            "rowid IN (SELECT rowid FROM tasks_fts WHERE tasks_fts MATCH ? "
            "UNION ALL SELECT rowid FROM tasks WHERE id = ?)"
        )
    return _SCAN


def _search_params(term: str, scan: bool = False) -> list[str]:
    if len(term) >= _TRIGRAM and not scan:
        # One FTS5 phrase: the whole term as a substring, its quotes doubled.
        return ['"' + term.replace('"', '""') + '"', term]
    like = "%" + _escape_like(term) + "%"
    return [like, like, like, like, like, term]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _recent_page(store: Store, flt: TaskFilter) -> list[dict[str, Any]] | None:
    """The page of a search from the newest rows alone, or None when they do not fill it.

    A full page there is the true page: every match outside the window is older."""
    where, params = replace(flt, search="").where()
    rows = store.query(
        f"SELECT {LIST_COLUMNS} FROM (SELECT * FROM tasks{where} ORDER BY seen DESC LIMIT ?) "
        f"WHERE {_SCAN} ORDER BY seen DESC LIMIT ? OFFSET ?",
        [*params, RECENT_WINDOW, *_search_params(flt.search, scan=True), flt.limit, flt.offset],
    )
    return [decode_task(row) for row in rows] if len(rows) == flt.limit else None


def list_tasks(store: Store, flt: TaskFilter) -> list[dict[str, Any]]:
    """Tasks matching ``flt``, newest first, one page."""
    if len(flt.search) >= _TRIGRAM:
        page = _recent_page(store, flt)
        if page is not None:
            return page
    where, params = flt.where()
    rows = store.query(
        f"SELECT {LIST_COLUMNS} FROM tasks{where} ORDER BY seen DESC LIMIT ? OFFSET ?",
        [*params, flt.limit, flt.offset],
    )
    return [decode_task(row) for row in rows]


def get_task(store: Store, task_id: str) -> dict[str, Any] | None:
    """One task with its children (tasks whose parent it is)."""
    row = store.query_one("SELECT * FROM tasks WHERE id = ?", [task_id])
    if row is None:
        return None
    task = decode_task(row)
    task["children"] = [
        dict(r)
        for r in store.query(
            "SELECT id, name, state FROM tasks WHERE parent_id = ? ORDER BY seen LIMIT 200",
            [task_id],
        )
    ]
    return task


def task_types(store: Store) -> list[str]:
    """Every task name seen (an index-only scan of ``tasks_name``)."""
    rows = store.query("SELECT DISTINCT name FROM tasks WHERE name IS NOT NULL ORDER BY name")
    return [str(r["name"]) for r in rows]


def workers(store: Store, now: float | None = None) -> list[dict[str, Any]]:
    """Workers from their heartbeats: online while heard from within three beats."""
    now = time.time() if now is None else now
    found = []
    for row in store.query("SELECT * FROM workers ORDER BY hostname"):
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
        "SELECT runtime FROM tasks WHERE finished >= ? AND runtime IS NOT NULL "
        "ORDER BY runtime LIMIT 1 OFFSET ?",
        [since, min(count - 1, int(count * fraction))],
    )
    return None if row is None else float(row["runtime"])


def overview(store: Store, window: float = 3600.0, now: float | None = None) -> dict[str, Any]:
    """The last ``window`` seconds: per-minute throughput, failure rate, runtime percentiles."""
    now = time.time() if now is None else now
    since = now - window
    per_minute: dict[int, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for row in store.query(
        "SELECT CAST(finished / 60 AS INTEGER) AS minute, state, COUNT(*) AS n FROM tasks "
        "WHERE finished >= ? GROUP BY minute, state",
        [since],
    ):
        bucket = per_minute.setdefault(int(row["minute"]), {})
        bucket[row["state"]] = row["n"]
        totals[row["state"]] = totals.get(row["state"], 0) + row["n"]
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
        "SELECT COUNT(*) AS n FROM tasks WHERE finished >= ? AND runtime IS NOT NULL", [since]
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


def _seen_by(flt: TaskFilter, seen_until: float) -> tuple[str, list[Any]]:
    where, params = replace(flt, limit=0, offset=0).where()
    joined = f"{where} AND seen <= ?" if where else " WHERE seen <= ?"
    return joined, [*params, seen_until]


def count_tasks(store: Store, flt: TaskFilter, seen_until: float) -> int:
    """How many tasks match ``flt`` among those first seen at or before ``seen_until``."""
    where, params = _seen_by(flt, seen_until)
    row = store.query_one(f"SELECT COUNT(*) AS n FROM tasks{where}", params)
    return int(row["n"]) if row else 0


def task_batches(
    store: Store, flt: TaskFilter, seen_until: float, size: int = 1000
) -> Iterator[list[dict[str, Any]]]:
    """Every task matching ``flt`` first seen at or before ``seen_until``, newest first, in
    lists of ``size`` (id, name, args, kwargs, queue, state): one page in memory at a time.

    Pages follow the last row's (seen, id), not an offset: rows added or changed meanwhile
    neither shift a page nor come twice, and no page costs more than the first."""
    where, params = _seen_by(flt, seen_until)
    after: list[Any] = []
    while True:
        keyset = " AND (seen < ? OR (seen = ? AND id < ?))" if after else ""
        rows = store.query(
            f"SELECT id, name, args, kwargs, queue, state, seen FROM tasks{where}{keyset} "
            "ORDER BY seen DESC, id DESC LIMIT ?",
            [*params, *after, size],
        )
        if not rows:
            return
        yield [decode_task(row) for row in rows]
        last = rows[-1]
        after = [last["seen"], last["seen"], last["id"]]


def workflow_tasks(store: Store, root_id: str, limit: int) -> list[dict[str, Any]]:
    """The tasks of the workflow ``root_id`` started (it and those naming it their root),
    oldest first, at most ``limit`` + 1 (one more says the list was cut)."""
    rows = store.query(
        "SELECT id, name, state, parent_id, root_id, seen FROM tasks "
        "WHERE id = ? OR root_id = ? ORDER BY seen, id LIMIT ?",
        [root_id, root_id, limit + 1],
    )
    return [dict(row) for row in rows]
