"""The schedules page and its API: periodic tasks with their next run and last outcome.

The rows come from the broker (``celeriac.beat.list_entries``): the entries of
the app's settings and the runtime changes, each entry's last run and next due
time, and the leader. The last outcome is the state the history store holds for
the last run's task (its id is derived from the entry and the due time).
"""

from __future__ import annotations

from typing import Any

from ..beat import list_entries, pause_entry, resume_entry, run_entry, run_id
from ..exceptions import CapabilityUnavailable, ConfigurationError
from .context import Dashboard
from .queries import get_task


def schedule_rows(board: Dashboard) -> dict[str, Any]:
    """``{"leader": name or None, "entries": [...]}``; entries empty where the broker
    keeps no beat state (``"unavailable"`` says why)."""
    try:
        statuses, lease = list_entries(board.app)
    except CapabilityUnavailable as exc:
        return {"leader": None, "entries": [], "unavailable": str(exc)}
    rows = []
    for status in statuses:
        entry, last = status.entry, status.last_run
        outcome = None
        if last is not None:
            task = get_task(board.store, run_id(entry.name, round(last.timestamp() * 1000)))
            outcome = task["state"] if task is not None else None
        rows.append(
            {
                "name": entry.name,
                "task": entry.task,
                "schedule": repr(entry.schedule),
                "paused": entry.paused,
                "catch_up": entry.catch_up,
                "source": entry.source,
                "last_run": last.timestamp() if last is not None else None,
                "next_run": status.next_run.timestamp() if status.next_run else None,
                "last_outcome": outcome,
            }
        )
    leader = lease.holder.rsplit(":", 1)[0] if lease is not None and lease.holder else None
    return {"leader": leader, "entries": rows}


def schedule_action(kind: str) -> Any:
    """The POST action ``/api/schedule/<kind>/<name>``: pause, resume or run an entry."""

    def act(board: Dashboard, params: dict[str, Any]) -> dict[str, Any]:
        name, app = str(params["name"]), board.app
        try:
            if kind == "pause":
                pause_entry(app, name)
                return {"message": f"Paused {name}"}
            if kind == "resume":
                resume_entry(app, name)
                return {"message": f"Resumed {name}"}
            result = run_entry(app, name)
        except ConfigurationError as exc:
            raise LookupError(str(exc)) from None
        return {"message": f"Sent {name} now", "task-id": result.id}

    return act


SCHEDULE_ACTIONS = ("pause", "resume", "run")
