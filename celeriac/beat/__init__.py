"""Periodic tasks: ``celeriac beat``, entries from ``beat_schedule`` and at runtime.

See :mod:`celeriac.beat.service` for how one leader among any number of beats
sends each due run once, and :mod:`celeriac.beat.runtime` for changing the
schedule while it runs.
"""

from __future__ import annotations

from .entries import Entry
from .runtime import (
    add_entry,
    current_leader,
    list_entries,
    pause_entry,
    remove_entry,
    resume_entry,
    run_entry,
)
from .service import BEAT_LEADER, BEAT_SENT, BEAT_SKIPPED, Beat, run_id

__all__ = [
    "BEAT_LEADER",
    "BEAT_SENT",
    "BEAT_SKIPPED",
    "Beat",
    "Entry",
    "add_entry",
    "current_leader",
    "list_entries",
    "pause_entry",
    "remove_entry",
    "resume_entry",
    "run_entry",
    "run_id",
]
