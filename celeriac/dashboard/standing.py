"""Where a task stands, from the result backend, the broker and the workers, with why.

The events make the history; the result backend has the last word on an
outcome (a task the events left PENDING may be FAILURE there: an unknown task,
dead-lettered), and a task that waits says where and why: delayed until a time
(countdown, eta, a retry, a rate limit's slot), reserved by a worker that
prefetched it, held by a paused queue, or queued since when.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..control.waiting import PAGE_MAX
from ..exceptions import CapabilityUnavailable
from .merge import FINAL_STATES
from .queries import workers

if TYPE_CHECKING:
    from .context import Dashboard

RUNNING = frozenset({"STARTED"})


def notes(task: dict[str, Any]) -> dict[str, Any]:
    """The notes of the task's timeline merged, latest last (reason, dead letter, copies)."""
    merged: dict[str, Any] = {}
    for entry in task.get("timeline") or []:
        if len(entry) > 3 and isinstance(entry[3], dict):
            note = entry[3]
            if merged.get("terminated") and note.get("reason") == "revoked":
                continue  # its message came back and was skipped: it still was terminated
            merged.update({k: v for k, v in note.items() if k != "terminated" or v})
    return merged


def _backend_says(board: Dashboard, task_id: str) -> dict[str, Any] | None:
    backend = board.app.backend
    if not backend.stores_results:
        return None
    meta = backend.get_many([task_id]).get(task_id)
    if meta is None or not meta.ready:
        return None
    said: dict[str, Any] = {"state": meta.state, "worker": meta.worker}
    if isinstance(meta.result, dict) and "exc_type" in meta.result:
        # as text: the dashboard imports no module a stored record names
        said["exception"] = f"{meta.result['exc_type']}({meta.result.get('exc_message')!r})"
        said["reason"] = str(meta.result.get("exc_message") or "")
    return said


def _reserved_by(board: Dashboard, task_id: str, queue: str | None) -> str | None:
    """The worker holding the task's message unstarted: from the broker's reserved list
    (one read), or on a broker that cannot list it, from the workers' own answers."""
    browse = board.app.broker.browse
    if browse is not None and not browse.reserved_in_workers:  # RabbitMQ: only they know
        if not queue:
            return None
        for held in browse.messages(queue, "reserved", limit=PAGE_MAX):
            if held.id == task_id:
                return (held.holder or "").partition("/")[0] or held.holder  # node/pid/slot
        return None
    for worker in workers(board.store):
        if not worker["alive"]:
            continue
        reserved = board.inspector.details(worker["hostname"]).get("reserved") or []
        if any(isinstance(t, dict) and t.get("id") == task_id for t in reserved):
            return str(worker["hostname"])
    return None


def _paused(board: Dashboard, queue: str | None) -> dict[str, Any] | None:
    if not queue:
        return None
    try:
        return board.app.control.paused().get(queue)
    except CapabilityUnavailable:  # no flags on this broker: no queue can be paused
        return None


def _waiting(board: Dashboard, task: dict[str, Any], noted: dict[str, Any], now: float) -> str:
    """Why a task that has not started waits, in a sentence."""
    queue = task.get("queue")
    paused = _paused(board, queue)
    if paused is not None:
        by = f" by {paused['by']}" if paused.get("by") else ""
        return f"queue {queue} is paused{by}: no worker starts its tasks until it is resumed"
    eta = task.get("eta")
    if isinstance(eta, (int, float)) and eta > now:
        if task.get("state") == "RETRY":
            why = f"retry {task.get('retries') or 1}"
        elif str(noted.get("reason", "")).startswith("rate limited"):
            why = "its rate limit: it runs at its slot"
        else:
            why = "countdown / eta"
        return f"delayed until {_clock(eta)} (in {_span(eta - now)}) because of {why}"
    reason = str(noted.get("reason", ""))
    if reason.startswith("concurrency limit"):  # parked in its key's wait list
        return (
            f"{reason}: parked in the broker, it goes back to its queue when a task of its "
            "key finishes"
        )
    holder = _reserved_by(board, task["id"], queue)
    if holder is not None:
        return f"reserved by worker {holder}: prefetched, starts when a slot of it is free"
    return f"queued in {queue or 'its queue'} for {_span(now - float(task['seen']))}"


def standing(board: Dashboard, task: dict[str, Any]) -> dict[str, Any]:
    """The state to show, the backend's word when it has one, and why (blocking)."""
    now = time.time()
    noted = notes(task)
    said = _backend_says(board, task["id"])
    shown: dict[str, Any] = {"state": task["state"], "worker": task.get("worker"), **noted}
    if said is not None:
        shown["backend"] = said["state"]
        shown["reason"] = shown.get("reason") or said.get("reason")
        if said["state"] != task["state"]:
            shown.update(state=said["state"], disagreed=task["state"])
            shown["worker"] = said.get("worker") or shown["worker"]
            shown.setdefault("exception", said.get("exception"))
    state = shown["state"]
    shown["finished"] = state in FINAL_STATES
    terminated = noted.get("terminated") or "terminated" in str(shown.get("reason") or "")
    if state == "REVOKED" and terminated:
        shown["label"] = "REVOKED (terminated)"
    if not shown["finished"] and state not in RUNNING:
        shown["waiting"] = _waiting(board, task, noted, now)
    return shown


def _clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))


def _span(seconds: float) -> str:
    """``45 s``, ``3 min``, ``2 h 5 min``: a span for people."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60} min"


__all__ = ["notes", "standing"]
