"""PostgreSQL for the tests: a throwaway database on the local server.

Tests that need PostgreSQL skip when it is not reachable, except under CI
(``CI`` set), where a missing server is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

HOST = os.environ.get("CELERIAC_TEST_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("CELERIAC_TEST_PG_PORT", "5432"))
USER = os.environ.get("CELERIAC_TEST_PG_USER", "postgres")


def _admin_connection() -> Any:
    psycopg = pytest.importorskip("psycopg", reason="needs psycopg (the test extra)")
    try:
        return psycopg.connect(
            host=HOST, port=PORT, user=USER, dbname="postgres", autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable on {HOST}:{PORT}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def throwaway_database() -> Iterator[dict[str, Any]]:
    """Create a database, yield Django's settings for it, then drop it."""
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
