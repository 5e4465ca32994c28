"""Search in the task list: a substring of the name, args, kwargs, result or exception
(ignoring case), or a task id exactly; the same answers on every database.

How each database finds the rows (``Store.search_index``):

* ``"fts5"`` (SQLite): the trigram FTS5 table, kept by triggers.
* ``"pg_trgm"`` (PostgreSQL): a GIN trigram index over the searched text, used
  by ``ILIKE``. The store creates the ``pg_trgm`` extension when it may; when it
  may not (a user without the right to create it), it logs how to and searches
  by scanning, as on MySQL.
* ``"grams"`` (MySQL/MariaDB): a FULLTEXT index over words that stand for the
  text's trigrams (see :mod:`.grams`), each candidate checked with ``LIKE``.
* ``""`` (PostgreSQL without ``pg_trgm``, or a MySQL server whose FULLTEXT token
  sizes leave out six-character words): a scan with ``LIKE``, newest rows first,
  which stops at a full page.

Trigram indexes answer terms of three characters or more; a shorter term is a
scan on every database. A term frequent enough to fill the page from the newest
``RECENT_WINDOW`` rows is answered from those first (see :mod:`.queries`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex

from .database import Database
from .grams import WORD_DIGITS, gram_query, term_words
from .schema import GRAMS_COLUMN, SEARCHED, Tables, fts5_backfill, fts5_statements, searched_text

logger = logging.getLogger("celeriac.dashboard")

TRIGRAM = 3  # the shortest term a trigram index answers
RAREST_WORDS = 3  # MySQL: the words a search asks its FULLTEXT index for
#: SQLite's rowid of the table a statement reads
_ROWID: sa.ColumnClause[Any] = sa.literal_column("rowid")


def prepare_search(db: Database, tables: Tables) -> str:
    """Create the database's search index if it is missing; which one it has."""
    if db.kind == "sqlite":
        _prepare_fts5(db, tables)
        return "fts5"
    if db.kind == "postgresql":
        return "pg_trgm" if _prepare_trigrams(db, tables) else ""
    return "grams" if _gram_words_indexed(db) else ""


def _gram_words_indexed(db: Database) -> bool:
    """Whether the server's FULLTEXT indexes keep words as long as the trigram words."""
    [sizes] = db.rows(
        sa.select(
            sa.literal_column("@@innodb_ft_min_token_size").label("shortest"),
            sa.literal_column("@@innodb_ft_max_token_size").label("longest"),
        )
    )
    if int(sizes["shortest"]) <= WORD_DIGITS <= int(sizes["longest"]):
        return True
    logger.warning(
        "the dashboard's search scans the task table: the server's innodb_ft_min_token_size "
        "(%s) and innodb_ft_max_token_size (%s) leave out its %s-character words",
        sizes["shortest"],
        sizes["longest"],
        WORD_DIGITS,
    )
    return False


def _prepare_fts5(db: Database, tables: Tables) -> None:
    with db.transaction() as connection:
        exists = sa.inspect(connection).has_table(tables.fts.name)
        for statement in fts5_statements(tables):
            connection.exec_driver_sql(statement)
        if not exists:  # a store written before the index existed: fill it once
            connection.execute(fts5_backfill(tables))


def _prepare_trigrams(db: Database, tables: Tables) -> bool:
    assert tables.search_index is not None
    try:
        with db.transaction() as connection:
            connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # no right to create it: maybe it exists, the index will say
        logger.debug("CREATE EXTENSION pg_trgm failed: %s", exc)
    try:
        with db.transaction() as connection:
            connection.execute(CreateIndex(tables.search_index, if_not_exists=True))
    except Exception as exc:  # the extension is missing: search works, by scanning
        logger.warning(
            "the dashboard's search scans the task table: the pg_trgm extension is missing "
            "(%s). Have a superuser run CREATE EXTENSION pg_trgm in %s, then restart the "
            "dashboard to build the index",
            str(exc).splitlines()[0],
            db.description,
        )
        return False
    return True


def _rarest_words(db: Database, tables: Tables, term: str) -> list[str] | None:
    """The ``RAREST_WORDS`` words of ``term`` the fewest tasks were written with, or None
    when one of them never was (see :mod:`.grams`)."""
    assert tables.words is not None
    words, counted = term_words(term), tables.words.c
    rows = db.rows(sa.select(counted.word, counted.tasks).where(counted.word.in_(words)))
    counts = {row["word"]: int(row["tasks"]) for row in rows}
    if len(counts) < len(words):
        return None
    return sorted(words, key=counts.__getitem__)[:RAREST_WORDS]


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class Search:
    """How one term is found: ``way`` names the condition (see :func:`search_clause`),
    ``params`` are its parameters."""

    way: str  # "scan", "fts5", "pg_trgm", "grams", or "nothing" (no task can hold it)
    params: dict[str, Any]


def scan_params(term: str) -> dict[str, Any]:
    """The parameters of :func:`scan_clause` finding ``term``."""
    return {"like": "%" + escape_like(term) + "%", "term": term}


def plan_search(db: Database, tables: Tables, index: str, term: str) -> Search:
    """The way to find ``term`` with the store's ``index``, the index when it can."""
    like = scan_params(term)
    if len(term) < TRIGRAM or not index:
        return Search("scan", like)
    if index == "fts5":
        # One FTS5 phrase: the whole term as a substring, its quotes doubled.
        return Search("fts5", {"phrase": '"' + term.replace('"', '""') + '"', "term": term})
    if index == "grams":
        words = _rarest_words(db, tables, term)
        if words is None:
            return Search("nothing", {})  # a trigram of the term is in no task
        return Search("grams", {**like, "words": gram_query(words)})
    return Search("pg_trgm", like)


def _contains(kind: str, column: Any, pattern: sa.BindParameter[str]) -> sa.ColumnElement[bool]:
    """``column`` matches the ``LIKE`` pattern ``pattern``, ignoring case."""
    if kind == "postgresql":
        return column.ilike(pattern)  # type: ignore[no-any-return]  # backslash escapes
    if kind == "mysql":
        # Columns compare byte for byte (utf8mb4_bin); a search lower-cases both sides, as
        # the trigram words do (see .grams): a *_ci collation would also equate accented
        # letters, which the words do not. Backslash escapes by default.
        return sa.func.lower(column).like(sa.func.lower(pattern))
    # SQLite's LIKE ignores ASCII case already; it has no default escape character.
    return column.like(pattern, escape="\\")  # type: ignore[no-any-return]


def scan_clause(kind: str, columns: Any) -> sa.ColumnElement[bool]:
    """The search as a row-by-row test of ``columns`` (a table's or a subquery's), with the
    parameters ``like`` (the escaped pattern) and ``term``."""
    like = sa.bindparam("like", type_=sa.String)
    tests = [_contains(kind, columns[name], like) for name in SEARCHED]
    return sa.or_(*tests, columns["id"] == sa.bindparam("term", type_=sa.String))


def search_clause(kind: str, tables: Tables, way: str) -> sa.ColumnElement[bool]:
    """The condition of a :class:`Search` ``way``; its parameters are the plan's."""
    tasks = tables.tasks
    if way == "scan":
        return scan_clause(kind, tasks.c)
    if way == "nothing":
        return sa.false()
    term = tasks.c.id == sa.bindparam("term", type_=sa.String)
    if way == "fts5":
        fts = tables.fts
        matching = sa.union_all(
            sa.select(fts.c.rowid).where(fts.c[fts.name].match(sa.bindparam("phrase"))),
            sa.select(_ROWID).select_from(tasks).where(term).correlate(None),
        )
        return _ROWID.in_(matching)
    if way == "grams":
        match = tasks.c[GRAMS_COLUMN].match(sa.bindparam("words", type_=sa.String))
        return sa.and_(match, scan_clause(kind, tasks.c))
    return sa.or_(searched_text(tasks.c).ilike(sa.bindparam("like", type_=sa.String)), term)
