"""Writes that each SQL dialect spells its own way, built with SQLAlchemy Core.

Shared by the SQL result backend and the dashboard's history store: an upsert
(``ON CONFLICT`` on PostgreSQL and SQLite, ``ON DUPLICATE KEY UPDATE`` on
MySQL/MariaDB), an insert that skips existing keys, and one that locks the row.
Each is one statement object, built once and executed with a list of rows.
"""

from __future__ import annotations

from typing import Any

from .schema import mysql, postgresql, sa, sqlite


def _insert(dialect: str, table: sa.Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    return mysql.insert(table)


def upsert(dialect: str, table: sa.Table) -> Any:
    """Insert a row, replacing the other columns when its primary key exists.

    One statement object, executed with a list of rows: compiled once, and sent
    as one multi-row statement by pymysql, as one pipeline by psycopg, and run
    in one call by sqlite3.
    """
    statement = _insert(dialect, table)
    keys = [column.name for column in table.primary_key]
    others = [column.name for column in table.columns if column.name not in keys]
    if dialect in ("mysql", "mariadb"):
        new_values = {name: statement.inserted[name] for name in others}
        return statement.on_duplicate_key_update(new_values)
    return statement.on_conflict_do_update(
        index_elements=keys, set_={name: statement.excluded[name] for name in others}
    )


def insert_new(dialect: str, table: sa.Table) -> Any:
    """Insert a row unless its primary key exists (rowcount 1 or 0)."""
    # SQLAlchemy keeps an INSERT's rowcount only when asked to
    statement = _insert(dialect, table).execution_options(preserve_rowcount=True)
    if dialect in ("mysql", "mariadb"):
        return statement.prefix_with("IGNORE")
    return statement.on_conflict_do_nothing()


def insert_or_lock(dialect: str, table: sa.Table, column: str) -> Any:
    """Insert a row, or leave the existing one as it is: either way it is locked until commit.

    The no-op update is what takes the lock on an existing row (PostgreSQL's
    ``DO UPDATE``, MySQL's ``ON DUPLICATE KEY UPDATE``); SQLite locks the whole
    database for the first write of a transaction.
    """
    statement = _insert(dialect, table)
    if dialect in ("mysql", "mariadb"):
        return statement.on_duplicate_key_update({column: table.c[column]})
    keys = [key.name for key in table.primary_key]
    return statement.on_conflict_do_update(index_elements=keys, set_={column: table.c[column]})
