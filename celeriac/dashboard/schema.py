"""The store's tables and indexes, for each database.

``tasks`` has one row per task. Lists are ordered by ``seen`` (when the task
was first seen: sent or received), newest first, so each filter has an index
that ends in ``seen``: a page of a filtered list, or of a time range, is an
index range scan, not a sort of the whole table. ``finished`` serves the
overview's last hour.

The search index differs by database (see :mod:`.search`):

* SQLite: ``tasks_fts``, a trigram FTS5 index over the searched text (name,
  args, kwargs, result, exception). Triggers keep it in step with ``tasks``
  inside the writer's own transaction; its rowid is the task row's rowid
  (``tasks`` is never VACUUMed, which could renumber implicit rowids). The index
  is contentless (the text is stored once, in ``tasks``): a deletion hands it the
  old values, which the triggers have at hand. The update trigger only reindexes
  when the searched text changed, which most events (received, started) do not.
* PostgreSQL: a GIN index of ``pg_trgm`` trigrams over the same text, joined
  with a separator no stored text contains, so ``ILIKE`` uses it.
* MySQL / MariaDB: neither indexes substrings, so ``search_grams`` holds the
  searched text's trigrams as words (see :mod:`.grams`) under a FULLTEXT index.

Every name starts with the store's table prefix, so several stores can share
one database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .dialects import Dialect
from .grams import WORD_DIGITS

TASK_COLUMNS = (
    "id", "name", "state", "args", "kwargs", "result", "exception", "traceback",
    "worker", "queue", "priority", "seen", "updated", "rank", "sent", "received",
    "started", "succeeded", "failed", "retried", "revoked", "finished", "runtime",
    "retries", "parent_id", "root_id", "eta", "expires", "timeline",
)  # fmt: skip

# Column kinds: "key" columns are compared whole (ids, filters), "text" holds JSON or free text.
_KEYS = ("id", "name", "state", "worker", "queue", "parent_id", "root_id")
_TEXTS = ("args", "kwargs", "result", "exception", "traceback", "timeline")
_INTEGERS = ("priority", "rank", "retries")
_NOT_NULL = ("id", "state", "seen", "updated", "rank")
#: the columns a search looks in
SEARCHED = ("name", "args", "kwargs", "result", "exception")
#: MySQL's column of trigram words (of the id and the searched columns)
GRAMS_COLUMN = "search_grams"
_INDEXES = (
    ("seen", "seen"),
    ("state", "state, seen"),
    ("name", "name, seen"),
    ("worker", "worker, seen"),
    ("queue", "queue, seen"),
)


@dataclass(frozen=True)
class Tables:
    """The names of one store's tables: ``prefix`` + tasks, meta, workers."""

    prefix: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]*", self.prefix):
            raise ValueError(
                f"table prefix {self.prefix!r}: use letters, digits and underscores only"
            )

    @property
    def tasks(self) -> str:
        return f"{self.prefix}tasks"

    @property
    def meta(self) -> str:
        return f"{self.prefix}meta"

    @property
    def workers(self) -> str:
        return f"{self.prefix}workers"

    @property
    def fts(self) -> str:
        return f"{self.prefix}tasks_fts"

    @property
    def words(self) -> str:
        return f"{self.prefix}tasks_words"

    @property
    def search_index(self) -> str:
        return f"{self.prefix}tasks_search"


def _column_type(dialect: Dialect, column: str) -> str:
    if column in _KEYS:
        kind = dialect.key_type
    elif column in _TEXTS:
        kind = dialect.text_type
    elif column in _INTEGERS:
        kind = dialect.int_type
    else:
        kind = dialect.real_type
    if column == "id":
        return f"{kind} PRIMARY KEY"
    return f"{kind} NOT NULL" if column in _NOT_NULL else kind


def _indexes(tables: Tables) -> list[tuple[str, str, str]]:
    """(name, columns, the rows indexed when partial indexes exist)."""
    return [
        *[(f"{tables.tasks}_{name}", on, "") for name, on in _INDEXES],
        (f"{tables.tasks}_finished", "finished", "finished IS NOT NULL"),
        (f"{tables.tasks}_parent", "parent_id", "parent_id IS NOT NULL"),
        (f"{tables.tasks}_root", "root_id", "root_id IS NOT NULL"),  # a workflow's tasks
    ]


def table_statements(dialect: Dialect, tables: Tables) -> list[str]:
    """``CREATE ... IF NOT EXISTS`` of the tables and their plain indexes."""
    q, options, key = dialect.quote, dialect.table_options, dialect.key_type
    columns = [f"{q(c)} {_column_type(dialect, c)}" for c in TASK_COLUMNS]
    inline = dialect.name == "mysql"  # no CREATE INDEX IF NOT EXISTS, no partial indexes
    if inline:
        columns += [f"INDEX {name} ({on})" for name, on, _ in _indexes(tables)]
        columns += [
            f"{GRAMS_COLUMN} {dialect.text_type}",
            f"FULLTEXT INDEX {tables.search_index} ({GRAMS_COLUMN})",
        ]
    statements = [
        f"CREATE TABLE IF NOT EXISTS {tables.meta} "
        f"({q('key')} {key} PRIMARY KEY, {q('value')} {dialect.text_type}){options}",
        f"CREATE TABLE IF NOT EXISTS {tables.tasks} (\n    "
        + ",\n    ".join(columns)
        + f"\n){options}",
        f"CREATE TABLE IF NOT EXISTS {tables.workers} ({q('hostname')} {key} PRIMARY KEY, "
        f"last_seen {dialect.real_type} NOT NULL, online {dialect.int_type} NOT NULL, "
        f"freq {dialect.real_type} NOT NULL, info {dialect.text_type} NOT NULL){options}",
    ]
    if inline:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {tables.words} (word CHAR({WORD_DIGITS}) "
            "CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY, tasks BIGINT NOT NULL)"
            " ENGINE=InnoDB"
        )
    else:
        statements += [
            f"CREATE INDEX IF NOT EXISTS {name} ON {tables.tasks} ({on})"
            + (f" WHERE {where}" if where else "")
            for name, on, where in _indexes(tables)
        ]
    return statements


def fts5_statements(tables: Tables) -> list[str]:
    """SQLite's trigram index over the searched text, and the triggers that keep it."""
    t, fts = tables.tasks, tables.fts
    cols = ", ".join(SEARCHED)
    new = ", ".join(f"new.{c}" for c in SEARCHED)
    old = ", ".join(f"old.{c}" for c in SEARCHED)
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in SEARCHED)
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({cols}, content='', "
        "tokenize='trigram')",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_insert AFTER INSERT ON {t} BEGIN "
        f"INSERT INTO {fts} (rowid, {cols}) VALUES (new.rowid, {new}); END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_delete AFTER DELETE ON {t} BEGIN "
        f"INSERT INTO {fts} ({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old}); END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_update AFTER UPDATE ON {t} WHEN {changed} BEGIN "
        f"INSERT INTO {fts} ({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old}); "
        f"INSERT INTO {fts} (rowid, {cols}) VALUES (new.rowid, {new}); END",
    ]


def fts5_backfill(tables: Tables) -> str:
    """Stores written before the index existed: fill it once from the rows."""
    cols = ", ".join(SEARCHED)
    return f"INSERT INTO {tables.fts} (rowid, {cols}) SELECT rowid, {cols} FROM {tables.tasks}"


# chr(1) between the columns: JSON and repr() escape control characters, so no stored
# text holds it and no match spans two columns.
TRIGRAM_TEXT = " || chr(1) || ".join(f"coalesce({c}, '')" for c in SEARCHED)


def trigram_index_statement(tables: Tables) -> str:
    """PostgreSQL's GIN index of trigrams over the searched text (needs ``pg_trgm``)."""
    return (
        f"CREATE INDEX IF NOT EXISTS {tables.search_index} ON {tables.tasks} "
        f"USING gin (({TRIGRAM_TEXT}) gin_trgm_ops)"
    )
