"""The store's tables and indexes, as SQLAlchemy Core ``Table``\\s for one database.

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
one database. Text is ``LONGTEXT`` on MySQL, as in the SQL result backend's tables,
and the key columns hold 255 characters there (its indexes need a bound).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from ..sql.schema import ID_LENGTH, LONG_TEXT, schema_lock
from .grams import WORD_DIGITS

TASK_COLUMNS = (
    "id", "name", "state", "args", "kwargs", "result", "exception", "traceback",
    "worker", "queue", "priority", "seen", "updated", "rank", "sent", "received",
    "started", "succeeded", "failed", "retried", "revoked", "finished", "runtime",
    "retries", "parent_id", "root_id", "eta", "expires", "timeline",
)  # fmt: skip

#: "key" columns are compared whole (ids, filters); MySQL holds ``ID_LENGTH`` characters
KEY_COLUMNS = ("id", "name", "state", "worker", "queue", "parent_id", "root_id")
_TEXTS = ("args", "kwargs", "result", "exception", "traceback", "timeline")
_INTEGERS = ("priority", "rank", "retries")
_NOT_NULL = ("state", "seen", "updated", "rank")
#: the columns a search looks in
SEARCHED = ("name", "args", "kwargs", "result", "exception")
#: MySQL's column of trigram words (of the id and the searched columns)
GRAMS_COLUMN = "search_grams"
#: the indexes of the filters, each followed by ``seen``: the order of every page
_FILTERED = ("seen", "state", "name", "worker", "queue")
#: partial indexes where the database has them: only rows with a value
_PARTIAL = {"finished": "finished", "parent": "parent_id", "root": "root_id"}
LOCK = "celeriac_dashboard_tables"  # held while creating tables (PostgreSQL, MySQL)

_KEY: sa.types.TypeEngine[str] = sa.Text().with_variant(sa.String(ID_LENGTH), "mysql", "mariadb")
_REAL: sa.types.TypeEngine[float] = sa.Double().with_variant(sqlite.REAL(), "sqlite")
# Columns compare byte for byte on MySQL (utf8mb4_bin: a filter on a name is exact).
_TABLE_OPTIONS: dict[str, Any] = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in (("engine", "InnoDB"), ("charset", "utf8mb4"), ("collate", "utf8mb4_bin"))
}


def check_prefix(prefix: str) -> str:
    """``prefix``, when it is fit to start a table name."""
    if not re.fullmatch(r"[A-Za-z0-9_]*", prefix):
        raise ValueError(f"table prefix {prefix!r}: use letters, digits and underscores only")
    return prefix


def _column_type(column: str) -> Any:
    if column in KEY_COLUMNS:
        return _KEY
    if column in _TEXTS:
        return LONG_TEXT
    return sa.Integer() if column in _INTEGERS else _REAL


def searched_text(columns: Any) -> sa.ColumnElement[str]:
    """PostgreSQL: the searched columns as one text, as its trigram index holds it.

    chr(1) between the columns: JSON and repr() escape control characters, so no stored
    text holds it and no match spans two columns. Constants are written inline, so the
    queries' expression is the index's."""
    separator = sa.func.chr(sa.literal_column("1"))
    parts = [sa.func.coalesce(columns[name], sa.literal_column("''")) for name in SEARCHED]
    text: sa.ColumnElement[Any] = parts[0]
    for part in parts[1:]:
        text = text.op("||")(separator).op("||")(part)
    return text


class Tables:
    """One store's tables (``prefix`` + tasks, meta, workers) for the database ``kind``:
    ``"sqlite"``, ``"postgresql"`` or ``"mysql"`` (MariaDB too)."""

    def __init__(self, prefix: str = "", kind: str = "sqlite") -> None:
        self.prefix, self.kind = check_prefix(prefix), kind
        self.metadata = sa.MetaData()
        grams = kind == "mysql"
        self.tasks = sa.Table(
            f"{prefix}tasks",
            self.metadata,
            sa.Column("id", _KEY, primary_key=True),
            *(sa.Column(c, _column_type(c), nullable=c not in _NOT_NULL) for c in TASK_COLUMNS[1:]),
            *([sa.Column(GRAMS_COLUMN, LONG_TEXT)] if grams else []),
            **_TABLE_OPTIONS,
        )
        self.meta = sa.Table(
            f"{prefix}meta",
            self.metadata,
            sa.Column("key", _KEY, primary_key=True),
            sa.Column("value", LONG_TEXT),
            **_TABLE_OPTIONS,
        )
        self.workers = sa.Table(
            f"{prefix}workers",
            self.metadata,
            sa.Column("hostname", _KEY, primary_key=True),
            sa.Column("last_seen", _REAL, nullable=False),
            sa.Column("online", sa.Integer, nullable=False),
            sa.Column("freq", _REAL, nullable=False),
            sa.Column("info", LONG_TEXT, nullable=False),
            **_TABLE_OPTIONS,
        )
        self._index_tasks()
        self.words = self._words_table() if grams else None
        self.fts = sa.Table(  # SQLite's FTS5 table: made by .search, read by queries
            f"{prefix}tasks_fts",
            sa.MetaData(),
            sa.Column("rowid", sa.Integer),
            *(sa.Column(name, sa.Text) for name in SEARCHED),
            sa.Column(f"{prefix}tasks_fts", sa.Text),  # the hidden column MATCH takes
        )
        self.search_index = self._search_index()

    def _index_tasks(self) -> None:
        tasks = self.tasks.c
        for name in _FILTERED:
            filtered = [tasks[name]] if name != "seen" else []
            sa.Index(f"{self.tasks.name}_{name}", *filtered, tasks.seen)
        for name, column in _PARTIAL.items():
            present = tasks[column].is_not(None)
            where: dict[str, Any] = {"sqlite_where": present, "postgresql_where": present}
            sa.Index(f"{self.tasks.name}_{name}", tasks[column], **where)

    def _words_table(self) -> sa.Table:
        """MySQL: how many tasks were written with each trigram word (see .grams)."""
        word = mysql.CHAR(WORD_DIGITS, charset="ascii", collation="ascii_bin")
        return sa.Table(
            f"{self.prefix}tasks_words",
            self.metadata,
            sa.Column("word", word, primary_key=True),
            sa.Column("tasks", sa.BigInteger, nullable=False),
            mysql_engine="InnoDB",
            mariadb_engine="InnoDB",
        )

    def _search_index(self) -> sa.Index | None:
        """The index of the searched text: PostgreSQL's trigrams (made by .search, which
        knows what to do without pg_trgm), MySQL's FULLTEXT words; none on SQLite."""
        name = f"{self.tasks.name}_search"
        if self.kind == "postgresql":
            return sa.Index(
                name,
                searched_text(self.tasks.c).label("searched"),
                postgresql_using="gin",
                postgresql_ops={"searched": "gin_trgm_ops"},
            )
        if self.kind == "mysql":
            fulltext: dict[str, Any] = {"mysql_prefix": "FULLTEXT", "mariadb_prefix": "FULLTEXT"}
            return sa.Index(name, self.tasks.c[GRAMS_COLUMN], **fulltext)
        return None

    def create(self, conn: sa.Connection) -> None:
        """Create the missing tables and indexes (not PostgreSQL's search index)."""
        with schema_lock(conn, LOCK):
            inspector = sa.inspect(conn)
            for table in self.metadata.sorted_tables:
                present: set[str | None] = set()
                if inspector.has_table(table.name):
                    present = {index["name"] for index in inspector.get_indexes(table.name)}
                else:
                    conn.execute(CreateTable(table))
                for index in sorted(table.indexes, key=lambda index: str(index.name)):
                    if index.name not in present and not self._made_by_search(index):
                        conn.execute(CreateIndex(index))

    def _made_by_search(self, index: sa.Index) -> bool:
        return index is self.search_index and self.kind == "postgresql"

    def drop(self, conn: sa.Connection) -> None:
        """Drop the tables and everything in them."""
        if self.kind == "sqlite":
            self.fts.drop(conn, checkfirst=True)
        self.metadata.drop_all(conn, checkfirst=True)


def fts5_statements(tables: Tables) -> list[str]:
    """SQLite's trigram index over the searched text, and the triggers that keep it.

    SQLite's own DDL: SQLAlchemy has no construct for virtual tables or triggers."""
    t, fts = tables.tasks.name, tables.fts.name
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


def fts5_backfill(tables: Tables) -> sa.Insert:
    """Stores written before the index existed: fill it once from the rows."""
    searched = [tables.tasks.c[name] for name in SEARCHED]
    rows = sa.select(sa.literal_column("rowid"), *searched)
    return tables.fts.insert().from_select(["rowid", *SEARCHED], rows)
