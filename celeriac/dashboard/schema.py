"""The store's tables and indexes.

``tasks`` has one row per task. Lists are ordered by ``seen`` (when the task
was first seen: sent or received), newest first, so each filter has an index
that ends in ``seen``: a page of a filtered list is an index range scan, not a
sort of the whole table. ``finished`` serves the overview's last hour.

``tasks_fts`` is a trigram FTS5 index over the searched text (name, args,
kwargs, result, exception), so a substring search that matches nothing answers
from the index instead of reading every row. Triggers keep it in step with
``tasks`` inside the writer's own transaction; its rowid is the task row's
rowid (``tasks`` is never VACUUMed, which could renumber implicit rowids). The
index is contentless (the text is stored once, in ``tasks``): a deletion hands
it the old values, which the triggers have at hand. The
update trigger only reindexes when the searched text changed, which most
events (received, started) do not.
"""

from __future__ import annotations

TASK_COLUMNS = (
    "id", "name", "state", "args", "kwargs", "result", "exception", "traceback",
    "worker", "queue", "priority", "seen", "updated", "rank", "sent", "received",
    "started", "succeeded", "failed", "retried", "revoked", "finished", "runtime",
    "retries", "parent_id", "root_id", "eta", "expires", "timeline",
)  # fmt: skip

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    name TEXT,
    state TEXT NOT NULL,
    args TEXT,
    kwargs TEXT,
    result TEXT,
    exception TEXT,
    traceback TEXT,
    worker TEXT,
    queue TEXT,
    priority INTEGER,
    seen REAL NOT NULL,
    updated REAL NOT NULL,
    rank INTEGER NOT NULL,
    sent REAL,
    received REAL,
    started REAL,
    succeeded REAL,
    failed REAL,
    retried REAL,
    revoked REAL,
    finished REAL,
    runtime REAL,
    retries INTEGER,
    parent_id TEXT,
    root_id TEXT,
    eta REAL,
    expires REAL,
    timeline TEXT
);
CREATE INDEX IF NOT EXISTS tasks_seen ON tasks (seen);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state, seen);
CREATE INDEX IF NOT EXISTS tasks_name ON tasks (name, seen);
CREATE INDEX IF NOT EXISTS tasks_worker ON tasks (worker, seen);
CREATE INDEX IF NOT EXISTS tasks_queue ON tasks (queue, seen);
CREATE INDEX IF NOT EXISTS tasks_finished ON tasks (finished) WHERE finished IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS tasks_fts USING fts5(
    name, args, kwargs, result, exception, content='',
    tokenize='trigram'
);
CREATE TRIGGER IF NOT EXISTS tasks_fts_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO tasks_fts (rowid, name, args, kwargs, result, exception)
    VALUES (new.rowid, new.name, new.args, new.kwargs, new.result, new.exception);
END;
CREATE TRIGGER IF NOT EXISTS tasks_fts_delete AFTER DELETE ON tasks BEGIN
    INSERT INTO tasks_fts (tasks_fts, rowid, name, args, kwargs, result, exception)
    VALUES ('delete', old.rowid, old.name, old.args, old.kwargs, old.result, old.exception);
END;
CREATE TRIGGER IF NOT EXISTS tasks_fts_update AFTER UPDATE ON tasks
WHEN old.name IS NOT new.name OR old.args IS NOT new.args OR old.kwargs IS NOT new.kwargs
    OR old.result IS NOT new.result OR old.exception IS NOT new.exception
BEGIN
    INSERT INTO tasks_fts (tasks_fts, rowid, name, args, kwargs, result, exception)
    VALUES ('delete', old.rowid, old.name, old.args, old.kwargs, old.result, old.exception);
    INSERT INTO tasks_fts (rowid, name, args, kwargs, result, exception)
    VALUES (new.rowid, new.name, new.args, new.kwargs, new.result, new.exception);
END;
CREATE TABLE IF NOT EXISTS workers (
    hostname TEXT PRIMARY KEY,
    last_seen REAL NOT NULL,
    online INTEGER NOT NULL,
    freq REAL NOT NULL,
    info TEXT NOT NULL
);
"""

# Stores written before the index existed: fill it once from the rows.
FTS_BACKFILL = """
INSERT INTO tasks_fts (rowid, name, args, kwargs, result, exception)
SELECT rowid, name, args, kwargs, result, exception FROM tasks
"""
