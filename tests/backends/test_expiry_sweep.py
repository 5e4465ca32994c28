"""Expired results leave the store by themselves: the store does not grow without bound.

These look inside each store (a table's row count, a dict's size), so they are
per backend rather than part of the shared suite.
"""

from __future__ import annotations

import sqlite3
import time
import uuid

import pytest

from celeriac import states
from celeriac.backends import memory as memory_backend
from celeriac.backends.base import Backend, TaskMeta
from celeriac.serialization import Codec
from celeriac.sqlite import backend as sqlite_backend


def _fill(backend: Backend, batches: int, batch: int = 7) -> None:
    """Store results, groups and chords in odd-sized batches, as workers would."""
    for _ in range(batches):
        ids = [uuid.uuid4().hex for _ in range(batch)]
        backend.store([TaskMeta(i, states.SUCCESS, result=i) for i in ids])
        backend.save_group(uuid.uuid4().hex, ids)
        backend.chord_part_done(uuid.uuid4().hex, 0, 2)


def _sqlite_rows(path: str) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in (
                "celeriac_results",
                "celeriac_groups",
                "celeriac_chords",
                "celeriac_chord_parts",
            )
        }


def test_sqlite_sweeps_expired_rows_as_it_writes(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_backend, "SWEEP_EVERY", 50)
    backend = sqlite_backend.SQLiteBackend(Codec(), sqlite_url, expires=0.05)
    _fill(backend, 20)
    time.sleep(0.1)  # everything so far has expired

    _fill(backend, 20)  # more than SWEEP_EVERY writes: at least one sweep

    rows = _sqlite_rows(backend.path)
    assert rows["celeriac_results"] <= 20 * 7  # at most the second half: the first is gone
    assert rows["celeriac_groups"] <= 20 and rows["celeriac_chords"] <= 20
    assert rows["celeriac_chord_parts"] == rows["celeriac_chords"]  # no orphan parts
    backend.close()


def test_memory_sweeps_expired_entries_as_it_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_backend, "SWEEP_EVERY", 50)
    backend = memory_backend.MemoryBackend(Codec(), f"memory://{uuid.uuid4().hex}", expires=0.05)
    _fill(backend, 20)
    time.sleep(0.1)

    _fill(backend, 20)

    store = backend._s
    assert len(store.results) <= 20 * 7  # at most the second half: the first is gone
    assert len(store.groups) <= 20 and len(store.chords) <= 20
