"""PostgreSQL LISTEN/NOTIFY for the SQL result backend's ``wait``.

The transaction that stores ready results also sends ``NOTIFY <channel>, '<task id>'``
(delivered when it commits). A waiting backend holds one extra connection,
outside the pool, that listens on the channel; ``wait`` reads the record only
when its task id is announced, so it neither polls nor sleeps. Only the psycopg
3.2+ driver can listen; with any other PostgreSQL driver ``wait`` polls.
"""

from __future__ import annotations

import logging
from typing import Any

from .schema import Engine, sa

logger = logging.getLogger("celeriac.sql.backend")

MAX_CHANNEL = 63  # PostgreSQL truncates longer identifiers


def channel_name(task_table: sa.Table) -> str:
    """The channel announcing the ready tasks of one task table."""
    name = f"{task_table.schema}.{task_table.name}" if task_table.schema else task_table.name
    return f"{name}_ready"[-MAX_CHANNEL:]


def notify_statement() -> sa.TextClause:
    """Announce ``:ids`` on ``:channel``: one statement for a whole batch."""
    return sa.text("SELECT pg_notify(:channel, task_id) FROM unnest(CAST(:ids AS text[])) task_id")


def can_listen(engine: Engine) -> bool:
    """Whether this engine's driver can listen: psycopg 3.2 and later can."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return False
    version = str(getattr(engine.dialect.dbapi, "__version__", "0.0"))
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) >= (3, 2)  # Connection.notifies(timeout=) came in 3.2


class Listener:
    """One connection listening on one channel; belongs to the thread that made it."""

    def __init__(self, engine: Engine, channel: str) -> None:
        pooled = engine.raw_connection()
        driver = pooled.driver_connection
        pooled.detach()  # this connection never goes back to the pool
        if driver is None:  # pragma: no cover - raw_connection always connects
            raise ConnectionError("the engine gave no connection to LISTEN on")
        self._conn: Any = driver
        try:
            self._conn.autocommit = True
            quoted = channel.replace('"', '""')
            self._conn.execute(f'LISTEN "{quoted}"')
        except Exception:
            self.close()
            raise

    def heard(self, task_id: str, seconds: float) -> bool:
        """Wait up to ``seconds`` for ``task_id`` to be announced; False when it was not."""
        for notice in self._conn.notifies(timeout=max(seconds, 0.0)):
            if notice.payload == task_id:
                return True
        return False

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:  # pragma: no cover - closing a broken connection
            logger.debug("closing the LISTEN connection failed", exc_info=True)
