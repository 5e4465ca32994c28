"""Why a task that has not started waits, in the dashboard's words: a task parked for a
slot of its concurrency limit says so (the other reasons are shown by the browser tests)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from celeriac.dashboard import standing


def test_a_task_parked_for_a_concurrency_slot_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(standing, "_paused", lambda board, queue: None)
    monkeypatch.setattr(standing, "_reserved_by", lambda board, task_id, queue: None)
    task: dict[str, Any] = {"id": "t1", "queue": "celeriac", "state": "RECEIVED", "seen": 0.0}
    reason = "concurrency limit 3 of proj.export:acme reached: waits for a slot"

    said = standing._waiting(None, task, {"reason": reason}, time.time())  # type: ignore[arg-type]

    assert said.startswith(reason) and "when a task of its key finishes" in said
