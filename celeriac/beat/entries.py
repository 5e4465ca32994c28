"""Periodic-task entries: from ``beat_schedule``, ``add_periodic_task`` and runtime changes.

Settings give the defaults. Changes made while the cluster runs are flags in the
broker (``beat.entry.<name>`` a JSON entry, ``beat.paused.<name>``,
``beat.removed.<name>``), which the leader reads every half second.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import TYPE_CHECKING, Any

import orjson

from ..exceptions import ConfigurationError
from ..schedules import BaseSchedule, as_schedule, crontab, schedule

if TYPE_CHECKING:
    from ..app import Celeriac

logger = logging.getLogger("celeriac.beat")

ENTRY, PAUSED, REMOVED = "beat.entry.", "beat.paused.", "beat.removed."
CHANGES = "beat."  # the prefix of every runtime change (the beat's own state uses "beat:")
CATCH_UP = ("once", "skip")
_KEYS = {"task", "schedule", "args", "kwargs", "options", "catch_up", "relative"}


@dataclass(frozen=True)
class Entry:
    """One periodic task: what to send, when, and what to do about runs missed in downtime."""

    name: str
    task: str
    schedule: BaseSchedule
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    catch_up: str = "once"  # "once": one run for all missed; "skip": none
    paused: bool = False
    source: str = "settings"  # or "runtime"


def entry_from(name: str, spec: Mapping[str, Any], source: str = "settings") -> Entry:
    """An entry from a ``beat_schedule`` value, with errors that name the entry."""
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"beat_schedule[{name!r}] must be a dict, not {spec!r}")
    unknown = set(spec) - _KEYS
    if unknown:
        raise ConfigurationError(
            f"beat_schedule[{name!r}] has unknown keys {sorted(unknown)}: use {sorted(_KEYS)}"
        )
    if not isinstance(spec.get("task"), str) or not spec["task"]:
        raise ConfigurationError(f"beat_schedule[{name!r}] needs 'task', the task's name")
    if "schedule" not in spec:
        raise ConfigurationError(
            f"beat_schedule[{name!r}] needs 'schedule': seconds, a timedelta or crontab(...)"
        )
    catch_up = spec.get("catch_up", "once")
    if catch_up not in CATCH_UP:
        raise ConfigurationError(
            f"beat_schedule[{name!r}] catch_up must be 'once' or 'skip', not {catch_up!r}"
        )
    try:
        sched = as_schedule(spec["schedule"], name)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(str(exc)) from None
    return Entry(
        name=name,
        task=spec["task"],
        schedule=sched,
        args=tuple(spec.get("args") or ()),
        kwargs=dict(spec.get("kwargs") or {}),
        options=dict(spec.get("options") or {}),
        catch_up=catch_up,
        source=source,
    )


def schedule_to_json(sched: BaseSchedule) -> dict[str, Any]:
    if isinstance(sched, schedule):
        return {"every": sched.interval_ms / 1000}
    if isinstance(sched, crontab):
        return {
            "crontab": {
                "minute": sched.minute,
                "hour": sched.hour,
                "day_of_week": sched.day_of_week,
                "day_of_month": sched.day_of_month,
                "month_of_year": sched.month_of_year,
            }
        }
    raise ConfigurationError(f"{sched!r} cannot be stored in the broker: use schedule or crontab")


def schedule_from_json(data: Mapping[str, Any]) -> BaseSchedule:
    if "every" in data:
        return schedule(float(data["every"]))
    return crontab(**data["crontab"])


def entry_to_json(entry: Entry) -> str:
    """The flag value of a runtime entry."""
    return orjson.dumps(
        {
            "task": entry.task,
            "schedule": schedule_to_json(entry.schedule),
            "args": list(entry.args),
            "kwargs": entry.kwargs,
            "options": entry.options,
            "catch_up": entry.catch_up,
        }
    ).decode()


def entry_from_json(name: str, raw: str) -> Entry:
    data = orjson.loads(raw)
    data["schedule"] = schedule_from_json(data["schedule"])
    return entry_from(name, data, source="runtime")


def load_entries(app: Celeriac, flags: Mapping[str, str]) -> dict[str, Entry]:
    """Every entry now: settings, then runtime entries over them, less removed ones, paused
    ones marked. ``flags`` are the broker's flags under ``beat.``."""
    entries = {name: entry_from(name, spec) for name, spec in dict(app.conf.beat_schedule).items()}
    for key, raw in flags.items():
        if key.startswith(ENTRY):
            name = key[len(ENTRY) :]
            try:
                entries[name] = entry_from_json(name, raw)
            except (ConfigurationError, ValueError, KeyError, TypeError) as exc:
                # written around add_entry (which checks): skip it, keep the others running
                logger.error("periodic task %r in the broker is unreadable, skipped: %s", name, exc)
    for key in flags:
        if key.startswith(REMOVED):
            entries.pop(key[len(REMOVED) :], None)
    for key in flags:
        if key.startswith(PAUSED) and key[len(PAUSED) :] in entries:
            name = key[len(PAUSED) :]
            old = entries[name]
            entries[name] = Entry(**{**old.__dict__, "paused": True})
    return entries


def app_timezone(app: Celeriac) -> tzinfo:
    """The zone crontab entries read: ``timezone``, else UTC, else (``enable_utc=False``)
    the machine's local zone (its offset now: set ``timezone`` for daylight saving)."""
    name = app.conf.timezone
    if name:
        return zoneinfo.ZoneInfo(name)
    if app.conf.enable_utc:
        return timezone.utc
    local = datetime.now().astimezone().tzinfo
    return local if local is not None else timezone.utc
