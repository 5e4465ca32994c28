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

from .database import Database, Params
from .grams import WORD_DIGITS, gram_query, term_words
from .schema import (
    GRAMS_COLUMN,
    SEARCHED,
    TRIGRAM_TEXT,
    Tables,
    fts5_backfill,
    fts5_statements,
)
from .schema import trigram_index_statement as _trigram_index

logger = logging.getLogger("celeriac.dashboard")

TRIGRAM = 3  # the shortest term a trigram index answers
RAREST_WORDS = 3  # MySQL: the words a search asks its FULLTEXT index for


def prepare_search(db: Database, tables: Tables) -> str:
    """Create the database's search index if it is missing; which one it has."""
    if db.dialect.name == "sqlite":
        _prepare_fts5(db, tables)
        return "fts5"
    if db.dialect.name == "postgresql":
        return "pg_trgm" if _prepare_trigrams(db, tables) else ""
    return "grams" if _gram_words_indexed(db) else ""


def _gram_words_indexed(db: Database) -> bool:
    """Whether the server's FULLTEXT indexes keep words as long as the trigram words."""
    [sizes] = db.rows(
        "SELECT @@innodb_ft_min_token_size AS shortest, @@innodb_ft_max_token_size AS longest"
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
    with db.transaction() as session:
        exists = session.rows(
            "SELECT 1 FROM sqlite_master WHERE name = :name", {"name": tables.fts}
        )
        for statement in fts5_statements(tables):
            session.run(statement)
        if not exists:  # a store written before the index existed: fill it once
            session.run(fts5_backfill(tables))


def _prepare_trigrams(db: Database, tables: Tables) -> bool:
    try:
        with db.transaction() as session:
            session.run("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # no right to create it: maybe it exists, the index will say
        logger.debug("CREATE EXTENSION pg_trgm failed: %s", exc)
    try:
        with db.transaction() as session:
            session.run(_trigram_index(tables))
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
    words = term_words(term)
    names = {f"w{n}": word for n, word in enumerate(words)}
    rows = db.rows(
        f"SELECT word, tasks FROM {tables.words} "
        f"WHERE word IN ({', '.join(':' + name for name in names)})",
        names,
    )
    counts = {row["word"]: int(row["tasks"]) for row in rows}
    if len(counts) < len(words):
        return None
    return sorted(words, key=counts.__getitem__)[:RAREST_WORDS]


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def scan_clause(db: Database) -> str:
    """The search as a row-by-row test (parameters ``like`` and ``term``)."""
    tests = [db.dialect.like(column, "like") for column in SEARCHED]
    return "(" + " OR ".join([*tests, "id = :term"]) + ")"


def search_clause(db: Database, tables: Tables, index: str, term: str) -> tuple[str, Params]:
    """The WHERE clause finding ``term``, using the index when it can, and its parameters."""
    like = {"like": "%" + escape_like(term) + "%", "term": term}
    if len(term) < TRIGRAM or not index:
        return scan_clause(db), like
    if index == "fts5":
        # One FTS5 phrase: the whole term as a substring, its quotes doubled.
        phrase = '"' + term.replace('"', '""') + '"'
        clause = (
            f"rowid IN (SELECT rowid FROM {tables.fts} WHERE {tables.fts} MATCH :phrase "
            f"UNION ALL SELECT rowid FROM {tables.tasks} WHERE id = :term)"
        )
        return clause, {"phrase": phrase, "term": term}
    if index == "grams":
        words = _rarest_words(db, tables, term)
        if words is None:
            return "1 = 0", {}  # a trigram of the term is in no task
        match = f"MATCH ({GRAMS_COLUMN}) AGAINST (:words IN BOOLEAN MODE)"
        return f"({match} AND {scan_clause(db)})", {**like, "words": gram_query(words)}
    return f"(({TRIGRAM_TEXT}) ILIKE :like OR id = :term)", like
