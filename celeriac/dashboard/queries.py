"""What the pages and the API read from the store: task lists, a task, workers, figures.

Each statement is built once per store and shape (which filters are set, which way a
search goes; see :meth:`.Store.prepared`) and run with the values as parameters.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from .search import TRIGRAM, Search, plan_search, scan_clause, scan_params, search_clause
from .store import Store, decode_task

LIST_COLUMNS = (
    "id", "name", "state", "args", "kwargs", "result", "exception", "worker", "queue", "seen",
    "updated", "received", "started", "succeeded", "failed", "runtime", "retries",
    "parent_id", "root_id", "timeline", "eta",
)  # fmt: skip
_BATCH_COLUMNS = ("id", "name", "args", "kwargs", "queue", "state", "seen")
_WORKFLOW_COLUMNS = ("id", "name", "state", "parent_id", "root_id", "seen")
_FILTERED = ("state", "name", "worker", "queue")
MISSED_BEATS = 3
# A term in most rows fills its page from the newest few thousand rows faster than
# the index lists every row holding it: look there first (see list_tasks).
RECENT_WINDOW = 5000


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

    def bounds(self) -> dict[str, Any]:
        """The set filters and time bounds, by name (the parameters of their conditions)."""
        found = {column: getattr(self, column) for column in _FILTERED if getattr(self, column)}
        found.update({bound: getattr(self, bound) for bound in ("since", "until")})
        return {name: value for name, value in found.items() if value is not None}


class _Match:
    """The tasks a filter matches: the shape of the condition, and its parameters."""

    def __init__(self, store: Store, flt: TaskFilter, search: bool = True) -> None:
        self.store, self.params = store, flt.bounds()
        self.bounded = tuple(self.params)
        self.search: Search | None = None
        if flt.search and search:
            self.search = plan_search(store.db, store.tables, store.search_index, flt.search)
            self.params.update(self.search.params)
        self.shape: Hashable = (self.bounded, self.search.way if self.search else "")

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        tasks = self.store.tables.tasks.c
        found = []
        for name in self.bounded:
            if name == "since":
                found.append(tasks.seen >= sa.bindparam("since"))
            elif name == "until":
                found.append(tasks.seen < sa.bindparam("until"))
            else:
                found.append(tasks[name] == sa.bindparam(name))
        if self.search is not None:
            kind, tables = self.store.db.kind, self.store.tables
            found.append(search_clause(kind, tables, self.search.way))
        return found


def _columns(store: Store, names: tuple[str, ...]) -> list[sa.Column[Any]]:
    return [store.tables.tasks.c[name] for name in names]


def _page(statement: sa.Select[Any]) -> sa.Select[Any]:
    return statement.limit(sa.bindparam("limit")).offset(sa.bindparam("offset"))


def _paging(flt: TaskFilter) -> dict[str, int]:
    return {"limit": flt.limit, "offset": flt.offset}


def _recent_page(store: Store, flt: TaskFilter) -> list[dict[str, Any]] | None:
    """The page of a search from the newest rows alone, or None when they do not fill it.

    A full page there is the true page: every match outside the window is older."""
    match = _Match(store, flt, search=False)

    def build() -> sa.Select[Any]:
        recent = (
            sa.select(*_columns(store, LIST_COLUMNS))
            .where(*match.conditions())
            .order_by(store.tables.tasks.c.seen.desc())
            .limit(sa.bindparam("window"))
            .subquery("recent")
        )
        found = sa.select(recent).where(scan_clause(store.db.kind, recent.c))
        return _page(found.order_by(recent.c.seen.desc()))

    rows = store.query(
        store.prepared(("recent", match.shape), build),
        {**match.params, **scan_params(flt.search), "window": RECENT_WINDOW, **_paging(flt)},
    )
    return [decode_task(row) for row in rows] if len(rows) == flt.limit else None


def list_tasks(store: Store, flt: TaskFilter) -> list[dict[str, Any]]:
    """Tasks matching ``flt``, newest first, one page."""
    if len(flt.search) >= TRIGRAM:
        page = _recent_page(store, flt)
        if page is not None:
            return page
    match = _Match(store, flt)

    def build() -> sa.Select[Any]:
        found = sa.select(*_columns(store, LIST_COLUMNS)).where(*match.conditions())
        return _page(found.order_by(store.tables.tasks.c.seen.desc()))

    rows = store.query(
        store.prepared(("list", match.shape), build),
        {**match.params, **_paging(flt)},
    )
    return [decode_task(row) for row in rows]


def get_task(store: Store, task_id: str) -> dict[str, Any] | None:
    """One task with its children (tasks whose parent it is)."""
    tasks = store.tables.tasks
    one = store.prepared("task", lambda: sa.select(tasks).where(tasks.c.id == sa.bindparam("id")))
    row = store.query_one(one, {"id": task_id})
    if row is None:
        return None
    task = decode_task(row)
    children = store.prepared(
        "children",
        lambda: (
            sa.select(tasks.c.id, tasks.c.name, tasks.c.state)
            .where(tasks.c.parent_id == sa.bindparam("id"))
            .order_by(tasks.c.seen)
            .limit(200)
        ),
    )
    task["children"] = store.query(children, {"id": task_id})
    return task


def task_types(store: Store) -> list[str]:
    """Every task name seen (an index-only scan of ``tasks_name``)."""
    name = store.tables.tasks.c.name
    names = store.prepared(
        "names", lambda: sa.select(name).distinct().where(name.is_not(None)).order_by(name)
    )
    return [str(r["name"]) for r in store.query(names)]


def workers(store: Store, now: float | None = None) -> list[dict[str, Any]]:
    """Workers from their heartbeats: online while heard from within three beats."""
    now = time.time() if now is None else now
    found = []
    table = store.tables.workers
    every = store.prepared("workers", lambda: sa.select(table).order_by(table.c.hostname))
    for row in store.query(every):
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


def _timed(store: Store) -> list[sa.ColumnElement[bool]]:
    """Tasks finished since ``since`` with a runtime."""
    tasks = store.tables.tasks.c
    return [tasks.finished >= sa.bindparam("since"), tasks.runtime.is_not(None)]


def _percentile(store: Store, since: float, count: int, fraction: float) -> float | None:
    if not count:
        return None
    runtime = store.tables.tasks.c.runtime
    statement = store.prepared(
        "percentile",
        lambda: (
            sa.select(runtime)
            .where(*_timed(store))
            .order_by(runtime)
            .limit(1)
            .offset(sa.bindparam("offset"))
        ),
    )
    offset = min(count - 1, int(count * fraction))
    row = store.query_one(statement, {"since": since, "offset": offset})
    return None if row is None else float(row["runtime"])


def _per_minute(store: Store) -> sa.Select[Any]:
    """Tasks finished since ``since``, counted by minute and state."""
    tasks = store.tables.tasks.c
    # The 60 written inline: PostgreSQL groups by the same expression only if it is.
    minutes = tasks.finished.op("/")(sa.literal_column("60"))
    if store.db.kind == "sqlite":
        minute = sa.cast(minutes, sa.Integer).label("minute")
    else:
        minute = sa.func.floor(minutes).label("minute")  # CAST would round
    return (
        sa.select(minute, tasks.state, sa.func.count().label("n"))
        .where(tasks.finished >= sa.bindparam("since"))
        .group_by(minute, tasks.state)
    )


def overview(store: Store, window: float = 3600.0, now: float | None = None) -> dict[str, Any]:
    """The last ``window`` seconds: per-minute throughput, failure rate, runtime percentiles."""
    now = time.time() if now is None else now
    since = now - window
    per_minute: dict[int, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for row in store.query(
        store.prepared("per minute", lambda: _per_minute(store)), {"since": since}
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
    count = _count(store, "timed", lambda: _timed(store), {"since": since})
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


def _count(store: Store, key: Hashable, conditions: Any, params: dict[str, Any]) -> int:
    """How many tasks meet ``conditions()`` (a statement kept under ``key``)."""
    statement = store.prepared(
        ("count", key),
        lambda: (
            sa.select(sa.func.count().label("n"))
            .select_from(store.tables.tasks)
            .where(*conditions())
        ),
    )
    row = store.query_one(statement, params)
    return int(row["n"]) if row else 0


def _seen_by(match: _Match) -> list[sa.ColumnElement[bool]]:
    return [*match.conditions(), match.store.tables.tasks.c.seen <= sa.bindparam("seen_until")]


def count_tasks(store: Store, flt: TaskFilter, seen_until: float) -> int:
    """How many tasks match ``flt`` among those first seen at or before ``seen_until``."""
    match = _Match(store, flt)
    params = {**match.params, "seen_until": seen_until}
    return _count(store, ("seen by", match.shape), lambda: _seen_by(match), params)


def task_batches(
    store: Store, flt: TaskFilter, seen_until: float, size: int = 1000
) -> Iterator[list[dict[str, Any]]]:
    """Every task matching ``flt`` first seen at or before ``seen_until``, newest first, in
    lists of ``size`` (id, name, args, kwargs, queue, state): one page in memory at a time.

    Pages follow the last row's (seen, id), not an offset: rows added or changed meanwhile
    neither shift a page nor come twice, and no page costs more than the first."""
    match = _Match(store, flt)
    tasks = store.tables.tasks.c

    def build(after: bool) -> sa.Select[Any]:
        page = sa.select(*_columns(store, _BATCH_COLUMNS)).where(*_seen_by(match))
        if after:
            seen: sa.BindParameter[Any] = sa.bindparam("after_seen")
            task_id: sa.BindParameter[Any] = sa.bindparam("after_id")
            older = sa.and_(tasks.seen == seen, tasks.id < task_id)
            page = page.where(sa.or_(tasks.seen < seen, older))
        return page.order_by(tasks.seen.desc(), tasks.id.desc()).limit(sa.bindparam("size"))

    following = store.prepared(("batch after", match.shape), lambda: build(True))
    statement = store.prepared(("batch", match.shape), lambda: build(False))
    params = {**match.params, "seen_until": seen_until, "size": size}
    while rows := store.query(statement, params):
        yield [decode_task(row) for row in rows]
        statement = following
        params = {**params, "after_seen": rows[-1]["seen"], "after_id": rows[-1]["id"]}


def workflow_tasks(store: Store, root_id: str, limit: int) -> list[dict[str, Any]]:
    """The tasks of the workflow ``root_id`` started (it and those naming it their root),
    oldest first, at most ``limit`` + 1 (one more says the list was cut)."""
    tasks = store.tables.tasks.c
    root: sa.BindParameter[Any] = sa.bindparam("root")
    statement = store.prepared(
        "workflow",
        lambda: (
            sa.select(*_columns(store, _WORKFLOW_COLUMNS))
            .where(sa.or_(tasks.id == root, tasks.root_id == root))
            .order_by(tasks.seen, tasks.id)
            .limit(sa.bindparam("limit"))
        ),
    )
    return store.query(statement, {"root": root_id, "limit": limit + 1})
