"""What differs between the databases the dashboard's history lives in, in one place.

The store and the queries write their SQL once, with ``:name`` parameters (which
both ``sqlite3`` and SQLAlchemy's ``text()`` accept), and ask the dialect for the
few pieces that differ: column types, the upsert, a case-insensitive ``LIKE``,
quoting, and the expression of a task's minute for the overview.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    """One database's spelling of the statements the store needs."""

    name: str  # "sqlite", "postgresql" or "mysql" (MariaDB too)
    key_type: str  # ids and the filtered columns (state, name, worker, queue)
    text_type: str  # JSON and free text (args, kwargs, result, traceback, timeline)
    real_type: str
    int_type: str
    quote_char: str
    upsert_suffix: str  # how an INSERT updates the row whose key exists
    insensitive_like: str  # "LIKE" made case-insensitive (whole operator, with escape)
    minute_of_finished: str
    table_options: str = ""
    #: longest string a key column holds (MySQL indexes need a bound); None: unbounded
    key_length: int | None = None

    def quote(self, identifier: str) -> str:
        return f"{self.quote_char}{identifier}{self.quote_char}"

    def upsert(self, table: str, columns: Sequence[str], key: str) -> str:
        """``INSERT`` of one row by named parameters that replaces the row with that key."""
        names = ", ".join(self.quote(c) for c in columns)
        values = ", ".join(f":{c}" for c in columns)
        updates = ", ".join(
            self.upsert_suffix.format(column=self.quote(c)) for c in columns if c != key
        )
        conflict = "ON DUPLICATE KEY UPDATE" if self.name == "mysql" else f"ON CONFLICT ({key})"
        update = "" if self.name == "mysql" else " DO UPDATE SET"
        return f"INSERT INTO {table} ({names}) VALUES ({values}) {conflict}{update} {updates}"

    def like(self, expression: str, parameter: str) -> str:
        """``expression`` contains the pattern ``:parameter``, ignoring case."""
        return self.insensitive_like.format(expression=expression, parameter=parameter)


SQLITE = Dialect(
    name="sqlite",
    key_type="TEXT",
    text_type="TEXT",
    real_type="REAL",
    int_type="INTEGER",
    quote_char='"',
    upsert_suffix="{column} = excluded.{column}",
    # SQLite's LIKE ignores ASCII case already; it has no default escape character.
    insensitive_like="{expression} LIKE :{parameter} ESCAPE '\\'",
    minute_of_finished="CAST(finished / 60 AS INTEGER)",
)

POSTGRESQL = Dialect(
    name="postgresql",
    key_type="TEXT",
    text_type="TEXT",
    real_type="DOUBLE PRECISION",
    int_type="INTEGER",
    quote_char='"',
    upsert_suffix="{column} = excluded.{column}",
    insensitive_like="{expression} ILIKE :{parameter}",  # backslash escapes by default
    minute_of_finished="FLOOR(finished / 60)",  # CAST would round
)

MYSQL = Dialect(
    name="mysql",
    key_type="VARCHAR(255)",
    text_type="LONGTEXT",
    real_type="DOUBLE",
    int_type="INTEGER",
    quote_char="`",
    upsert_suffix="{column} = VALUES({column})",
    # Columns compare byte for byte (utf8mb4_bin: a filter on a name is exact); a search
    # lower-cases both sides, as the trigram words do (see .grams): a *_ci collation
    # would also equate accented letters, which the words do not. Backslash escapes.
    insensitive_like="LOWER({expression}) LIKE LOWER(:{parameter})",
    minute_of_finished="FLOOR(finished / 60)",
    table_options=" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    key_length=255,
)

DIALECTS = {"sqlite": SQLITE, "postgresql": POSTGRESQL, "mysql": MYSQL, "mariadb": MYSQL}
