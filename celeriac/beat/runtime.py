"""Change the schedule while the cluster runs; the leader applies a change within a second.

Each function writes a flag in the broker (see :mod:`celeriac.beat.entries`), so
any process can call it: a script, the CLI (``celeriac beat list | run | pause |
resume``), a web view.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..brokers.capabilities import Flags, Lease, require
from ..exceptions import ConfigurationError
from .entries import (
    CHANGES,
    ENTRY,
    PAUSED,
    REMOVED,
    Entry,
    app_timezone,
    entry_from,
    entry_to_json,
    load_entries,
)
from .service import beat_state

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..result import AsyncResult


@dataclass(frozen=True)
class EntryStatus:
    """An entry as the cluster sees it now."""

    entry: Entry
    last_run: datetime | None
    next_run: datetime | None  # None while paused


def _flags(app: Celeriac) -> Flags:
    broker = app.broker
    return require(broker, broker.flags, "flags", "changing periodic tasks at runtime")


def _entries(app: Celeriac) -> dict[str, Entry]:
    return load_entries(app, _flags(app).read(CHANGES))


def _entry(app: Celeriac, name: str) -> Entry:
    entries = _entries(app)
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise ConfigurationError(f"no periodic task named {name!r} (known: {known})")
    return entries[name]


def add_entry(
    app: Celeriac,
    name: str,
    task: str,
    schedule: Any,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    catch_up: str = "once",
) -> Entry:
    """Add or replace the entry ``name`` (it wins over a settings entry of that name)."""
    spec = {"task": task, "schedule": schedule, "args": args, "kwargs": kwargs or {}}
    entry = entry_from(name, {**spec, "options": options or {}, "catch_up": catch_up}, "runtime")
    flags = _flags(app)
    flags.set(ENTRY + name, entry_to_json(entry))
    flags.set(REMOVED + name, None)
    return entry


def remove_entry(app: Celeriac, name: str) -> None:
    """Remove an entry, also one from settings (until it is added again)."""
    _entry(app, name)
    flags = _flags(app)
    flags.set(REMOVED + name, "1")
    flags.set(ENTRY + name, None)
    flags.set(PAUSED + name, None)


def pause_entry(app: Celeriac, name: str) -> None:
    """Stop sending an entry's runs (each one skipped, with a ``beat-skipped`` event)."""
    _entry(app, name)
    _flags(app).set(PAUSED + name, str(time.time()))


def resume_entry(app: Celeriac, name: str) -> None:
    """Send an entry's runs again, from its next due time on."""
    _entry(app, name)
    _flags(app).set(PAUSED + name, None)


def run_entry(app: Celeriac, name: str) -> AsyncResult[Any]:
    """Send one run of an entry now, outside its schedule."""
    entry = _entry(app, name)
    options = dict(entry.options)
    headers = {**options.pop("headers", {}), "beat": {"entry": name, "due": None}}
    return app.send_task(entry.task, entry.args, entry.kwargs, headers=headers, **options)


def list_entries(app: Celeriac) -> tuple[list[EntryStatus], Lease | None]:
    """Every entry with its last and next run, and the leader's lease."""
    state = beat_state(app.broker)
    last = state.last_runs()
    tz = app_timezone(app)
    now_ms = int(time.time() * 1000)
    found = []
    for name, entry in sorted(_entries(app).items()):
        last_ms = last.get(name)
        next_ms = None if entry.paused else entry.schedule.next_due(max(now_ms, last_ms or 0), tz)
        found.append(EntryStatus(entry, _when(last_ms, tz), _when(next_ms, tz)))
    return found, state.lease()


def _when(ms: int | None, tz: Any) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz or timezone.utc)


def current_leader(app: Celeriac) -> tuple[str | None, Lease | None]:
    """The leading beat's name (None when no beat leads now), and the lease it was read from
    (None when no beat ever ran on this broker, or the broker keeps no beat state)."""
    beat = app.broker.beat
    lease = beat.lease() if beat is not None else None
    if lease is None or not lease.holder or lease.until <= time.time():
        return None, lease
    return lease.holder.rsplit(":", 1)[0], lease
