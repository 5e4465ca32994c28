"""When periodic tasks run: ``schedule`` (every N seconds) and ``crontab``, as in Celery.

``from celeriac.schedules import crontab, schedule`` takes Celery's arguments::

    schedule(10.0)                      # every 10 seconds; also timedelta(seconds=10)
    crontab()                           # every minute
    crontab(minute=0, hour="*/3")       # every three hours on the hour
    crontab(minute=30, hour=7, day_of_week="mon-fri")
    crontab(0, 0, day_of_month="1-7", day_of_week="mon")   # the first Monday of a month

Every process must agree on when a run is due, because the due time names the run
(the beat sends each (entry, due time) once, :mod:`celeriac.beat`). So a
``schedule`` is a grid anchored at the Unix epoch (every 10 s means at :00, :10,
:20 ...), not an interval counted from whenever some process last ran it.

A ``crontab`` reads wall-clock time in the app's timezone (``timezone``, UTC
unless set; the machine's local zone when ``enable_utc=False`` and no
``timezone``). Across daylight-saving changes it follows cron: a time that
does not exist (02:30 on the spring-forward night) runs once at the first
instant after the gap (03:00); a time that happens twice (02:30 on the fall-back
night) runs once, at its first occurrence; entries that run every hour or more
often keep running every real hour through both changes. As in Celery, when
both ``day_of_month`` and ``day_of_week`` are restricted a day must match both.
The calendar arithmetic is the cronsim library's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Union

from cronsim import CronSim, CronSimError

Field = Union[str, int, Iterable[int]]  # noqa: UP007 - a runtime alias on Python 3.10
_DAY = timedelta(days=1)
_MAX_DAYS_SEARCHED = 366 * 30  # a Feb 29 that is also a Monday comes round within 28 years


class BaseSchedule:
    """A rule for due times: ``next_due(after_ms, tz)`` is the first due time after a moment."""

    def next_due(self, after_ms: int, tz: tzinfo) -> int:
        """The first due time strictly after ``after_ms`` (Unix milliseconds)."""
        raise NotImplementedError

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        """Time from now until the run after ``last_run_at`` (Celery's name), in UTC."""
        after = int(last_run_at.timestamp() * 1000)
        due = self.next_due(after, timezone.utc)
        return timedelta(milliseconds=max(0, due - int(time.time() * 1000)))


class schedule(BaseSchedule):  # Celery's name
    """Every ``run_every`` (seconds or a ``timedelta``), on a grid anchored at the epoch."""

    def __init__(self, run_every: float | timedelta, relative: bool = False, **_: Any) -> None:
        seconds = run_every.total_seconds() if isinstance(run_every, timedelta) else run_every
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"schedule(run_every) takes seconds or a timedelta, not {run_every!r}")
        if seconds < 0.001:
            raise ValueError(f"schedule(run_every) must be at least 1 ms, not {seconds!r} s")
        self.run_every = timedelta(seconds=seconds)
        self.interval_ms = round(seconds * 1000)
        self.relative = relative

    def next_due(self, after_ms: int, tz: tzinfo) -> int:
        return (after_ms // self.interval_ms + 1) * self.interval_ms

    def __repr__(self) -> str:
        return f"<schedule: every {self.run_every.total_seconds():g} s>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, schedule) and other.interval_ms == self.interval_ms

    def __hash__(self) -> int:
        return hash(("schedule", self.interval_ms))


def _field(name: str, value: Field) -> str:
    """One crontab field as cron text: strings as written, numbers, or an iterable of numbers."""
    if isinstance(value, bool):
        raise TypeError(f"crontab {name}={value!r}: give a number, a string or numbers")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not text:
            raise ValueError(f"crontab {name} is empty: use '*' for every value")
        return text
    try:
        numbers = sorted({int(v) for v in value})
    except (TypeError, ValueError):
        raise TypeError(
            f"crontab {name}={value!r}: give a number, a string like '*/15' or '1-5', "
            "or an iterable of numbers"
        ) from None
    if not numbers:
        raise ValueError(f"crontab {name} is empty: use '*' for every value")
    return ",".join(map(str, numbers))


class crontab(BaseSchedule):  # Celery's name
    """Celery's crontab: minute, hour, day_of_week, day_of_month, month_of_year."""

    def __init__(
        self,
        minute: Field = "*",
        hour: Field = "*",
        day_of_week: Field = "*",
        day_of_month: Field = "*",
        month_of_year: Field = "*",
        **_: Any,
    ) -> None:
        self.minute, self.hour = _field("minute", minute), _field("hour", hour)
        self.day_of_week = _field("day_of_week", day_of_week)
        self.day_of_month = _field("day_of_month", day_of_month)
        self.month_of_year = _field("month_of_year", month_of_year)
        # Celery requires both day fields to match; cron would take either. Ask
        # cronsim for the day of month and check the weekday with a second one.
        self._both_days = self.day_of_week != "*" and self.day_of_month != "*"
        dow = "*" if self._both_days else self.day_of_week
        self.expression = " ".join(
            (self.minute, self.hour, self.day_of_month, self.month_of_year, dow)
        )
        self._check(self.expression, "")
        self._weekdays: frozenset[int] = frozenset()
        if self._both_days:
            self._check(f"0 0 * * {self.day_of_week}", "day_of_week ")
            self._weekdays = _weekdays(self.day_of_week)

    def _check(self, expression: str, which: str) -> None:
        try:
            CronSim(expression, datetime(2000, 1, 1, tzinfo=timezone.utc))
        except CronSimError as exc:
            raise ValueError(
                f"crontab {which}{self._fields()} is not valid: {exc} (fields take '*', "
                "numbers, lists '1,5', ranges '1-5', steps '*/15', day and month names)"
            ) from None

    def _fields(self) -> str:
        return (
            f"(minute={self.minute!r}, hour={self.hour!r}, day_of_week={self.day_of_week!r}, "
            f"day_of_month={self.day_of_month!r}, month_of_year={self.month_of_year!r})"
        )

    def next_due(self, after_ms: int, tz: tzinfo) -> int:
        start = datetime.fromtimestamp(after_ms / 1000, tz)
        due = next(CronSim(self.expression, start))
        if self._both_days:
            due = self._matching_weekday(due, tz)
        return int(due.timestamp() * 1000)

    def _matching_weekday(self, due: datetime, tz: tzinfo) -> datetime:
        first = due
        while (due.isoweekday() % 7) not in self._weekdays:
            day = datetime(due.year, due.month, due.day, tzinfo=tz) + _DAY
            if day - first > _DAY * _MAX_DAYS_SEARCHED:
                raise ValueError(f"crontab {self._fields()} never matches a day")
            due = next(CronSim(self.expression, day - timedelta(seconds=1)))
        return due

    def __repr__(self) -> str:
        return f"<crontab: {self.expression} (Celery's order: {self._fields()})>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, crontab) and other._fields() == self._fields()

    def __hash__(self) -> int:
        return hash(self._fields())


def _weekdays(field: str) -> frozenset[int]:
    """The weekdays (0 = Sunday) a day_of_week field names, read by cronsim itself."""
    days: set[int] = set()
    for offset in range(7):  # 2000-01-02 was a Sunday
        sunday = datetime(2000, 1, 2, tzinfo=timezone.utc) + offset * _DAY
        probe = next(CronSim(f"0 0 * * {field}", sunday - timedelta(seconds=1)))
        if probe == sunday:
            days.add(offset)
    return frozenset(days)


def as_schedule(value: Any, entry: str) -> BaseSchedule:
    """A ``beat_schedule`` entry's ``schedule``: seconds, a ``timedelta``, or a schedule."""
    if isinstance(value, BaseSchedule):
        return value
    if isinstance(value, (int, float, timedelta)) and not isinstance(value, bool):
        return schedule(value)
    raise TypeError(
        f"periodic task {entry!r}: schedule must be seconds, a timedelta, schedule(...) or "
        f"crontab(...), not {value!r}"
    )


__all__ = ["BaseSchedule", "as_schedule", "crontab", "schedule"]
