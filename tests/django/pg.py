"""PostgreSQL for the tests: a throwaway database on the local server.

Tests that need PostgreSQL skip when it is not reachable, except under CI
(``CI`` set), where a missing server is a failure.

Test sessions may run at the same time on one machine, and one test restarts the
server: every user of the server holds a shared lock on a file, the restart an
exclusive one, so a restart never lands in the middle of another session's test.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.needs import missing, need_module

HOST = os.environ.get("CELERIAC_TEST_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("CELERIAC_TEST_PG_PORT", "5432"))
USER = os.environ.get("CELERIAC_TEST_PG_USER", "postgres")
LOCK_PATH = os.path.join(tempfile.gettempdir(), "celeriac-tests-postgresql.lock")
LOCK_TIMEOUT = 60.0


@contextmanager
def server_lock(exclusive: bool = False) -> Iterator[None]:
    """Hold the machine-wide lock on the test server: shared to use it, exclusive to restart it."""
    with open(LOCK_PATH, "a") as handle:
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(handle, mode)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"another test session held {LOCK_PATH} for {LOCK_TIMEOUT}s"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _admin_connection() -> Any:
    psycopg = need_module("psycopg", "test")
    try:
        return psycopg.connect(
            host=HOST, port=PORT, user=USER, dbname="postgres", autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError as exc:
        missing(f"PostgreSQL is not reachable on {HOST}:{PORT}: {exc}")


@contextmanager
def throwaway_database(lock: bool = True) -> Iterator[dict[str, Any]]:
    """Create a database, yield Django's settings for it, then drop it.

    ``lock=False`` when the caller already holds :func:`server_lock`.
    """
    if lock:
        with server_lock(), throwaway_database(lock=False) as database:
            yield database
        return
    name = f"celeriac_django_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": HOST,
            "PORT": str(PORT),
            "USER": USER,
            "NAME": name,
        }
    finally:
        # A new connection: the server may have restarted in between.
        with _admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
