"""Events written straight to a broker's stream, for collector and API tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from celeriac import Celeriac
from celeriac.dashboard import create_app
from celeriac.events import EVENTS_STREAM, encode_event


def emit(app: Celeriac, kind: str, **fields: Any) -> None:
    """Append one event of type ``kind`` to the app's event stream."""
    fields.setdefault("timestamp", time.time())
    app.broker.streams.add(EVENTS_STREAM, [encode_event({"type": kind, **fields}, 10_000)])


def lifecycle(
    app: Celeriac,
    task_id: str,
    name: str = "proj.add",
    outcome: str = "task-succeeded",
    at: float | None = None,
    worker: str = "w1@host",
    **extra: Any,
) -> None:
    """sent -> received -> started -> outcome, one second apart from ``at``."""
    at = time.time() - 10 if at is None else at
    args = extra.pop("args", [1, 2])
    emit(
        app,
        "task-sent",
        uuid=task_id,
        name=name,
        args=args,
        kwargs={},
        queue="celeriac",
        timestamp=at,
        **extra,
    )
    emit(app, "task-received", uuid=task_id, name=name, hostname=worker, timestamp=at + 1)
    emit(app, "task-started", uuid=task_id, name=name, hostname=worker, timestamp=at + 2)
    if outcome == "task-succeeded":
        emit(app, outcome, uuid=task_id, hostname=worker, result=3, runtime=0.5, timestamp=at + 3)
    elif outcome == "task-failed":
        emit(
            app,
            outcome,
            uuid=task_id,
            hostname=worker,
            exception="ValueError('boom')",
            traceback="Traceback...\nValueError: boom",
            runtime=0.25,
            timestamp=at + 3,
        )


def dashboard_client(cel: Celeriac, tmp_path: Path, **options: Any) -> TestClient:
    """A test client of a dashboard on ``cel`` that has read every event sent so far."""
    web = create_app(cel, store=tmp_path / "dash.sqlite3", collect=False, **options)
    web.state.dashboard.collector.drain()
    return TestClient(web)
