"""Crontab and interval schedules against expected next due times, DST weekends included.

Given a schedule, a zone and a moment, expect the next due time (wall clock with
its UTC offset, so a run in the repeated hour says which of the two it is).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from celeriac.schedules import as_schedule, crontab, schedule

BERLIN, NEW_YORK, UTC = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York"), timezone.utc


def _ms(text: str, tz: object) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)  # type: ignore[arg-type]
    return int(moment.timestamp() * 1000)


def _runs(sched: crontab | schedule, start: str, tz: ZoneInfo | timezone, count: int) -> list[str]:
    at, runs = _ms(start, tz), []
    for _ in range(count):
        at = sched.next_due(at, tz)
        runs.append(datetime.fromtimestamp(at / 1000, tz).isoformat())
    return runs


CASES = [
    # (schedule, zone, after, expected next runs)
    (crontab(), UTC, "2026-01-01T00:00:00", ["2026-01-01T00:01:00+00:00"]),
    (crontab(minute="*/15"), UTC, "2026-01-01T00:07:30", ["2026-01-01T00:15:00+00:00"]),
    (crontab(minute=0, hour="*/3"), UTC, "2026-01-01T04:00:00", ["2026-01-01T06:00:00+00:00"]),
    (
        crontab(minute="0,30", hour="9-10"),
        UTC,
        "2026-01-01T10:30:00",
        ["2026-01-02T09:00:00+00:00"],
    ),
    (crontab(minute=[5, 10], hour=8), UTC, "2026-01-01T08:05:00", ["2026-01-01T08:10:00+00:00"]),
    (
        crontab(minute=30, hour=7, day_of_week="mon-fri"),
        UTC,
        "2026-12-04T08:00:00",  # a Friday, after 07:30: next is Monday
        ["2026-12-07T07:30:00+00:00", "2026-12-08T07:30:00+00:00"],
    ),
    (crontab(0, 0, day_of_week="sun"), UTC, "2026-12-07T00:00:00", ["2026-12-13T00:00:00+00:00"]),
    (crontab(0, 0, day_of_week=0), UTC, "2026-12-07T00:00:00", ["2026-12-13T00:00:00+00:00"]),
    (
        crontab(0, 0, day_of_week="sat,sun"),
        UTC,
        "2026-12-07T00:00:00",
        ["2026-12-12T00:00:00+00:00", "2026-12-13T00:00:00+00:00"],
    ),
    (
        crontab(0, 0, day_of_month="1", month_of_year="*/3"),
        UTC,
        "2026-02-15T00:00:00",
        ["2026-04-01T00:00:00+00:00", "2026-07-01T00:00:00+00:00"],
    ),
    (crontab(0, 0, day_of_month=31), UTC, "2026-04-01T00:00:00", ["2026-05-31T00:00:00+00:00"]),
    (
        crontab(0, 0, month_of_year="feb", day_of_month=29),
        UTC,
        "2026-01-01T00:00:00",
        ["2028-02-29T00:00:00+00:00"],
    ),
    # Celery's rule: both day fields restricted means both must match (the first Monday)
    (
        crontab(0, 0, day_of_month="1-7", day_of_week="mon"),
        UTC,
        "2026-12-08T00:00:00",
        ["2027-01-04T00:00:00+00:00", "2027-02-01T00:00:00+00:00"],
    ),
    (
        crontab(0, 0, day_of_month=29, month_of_year=2, day_of_week="mon"),
        UTC,
        "2026-01-01T00:00:00",
        ["2044-02-29T00:00:00+00:00"],
    ),
    (crontab(0, 9), NEW_YORK, "2026-07-01T10:00:00", ["2026-07-02T09:00:00-04:00"]),
    # Europe/Berlin springs forward 2026-03-29 02:00 CET -> 03:00 CEST
    (
        crontab(30, 2),
        BERLIN,
        "2026-03-28T12:00:00",
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
    ),
    (
        crontab(0, 2),
        BERLIN,
        "2026-03-28T12:00:00",
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"],
    ),
    (
        crontab(0, 3),
        BERLIN,
        "2026-03-28T12:00:00",
        ["2026-03-29T03:00:00+02:00", "2026-03-30T03:00:00+02:00"],
    ),
    (
        crontab(0),
        BERLIN,
        "2026-03-29T00:30:00",
        ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"],
    ),
    (crontab(0, 12), BERLIN, "2026-03-28T13:00:00", ["2026-03-29T12:00:00+02:00"]),  # 23 h later
    # Europe/Berlin falls back 2026-10-25 03:00 CEST -> 02:00 CET
    (
        crontab(30, 2),
        BERLIN,
        "2026-10-24T12:00:00",
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
    ),
    (
        crontab(0),
        BERLIN,
        "2026-10-25T00:30:00",
        [
            "2026-10-25T01:00:00+02:00",
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T03:00:00+01:00",
        ],
    ),
    (crontab(0, 12), BERLIN, "2026-10-24T13:00:00", ["2026-10-25T12:00:00+01:00"]),  # 25 h later
    # America/New_York springs forward 2026-03-08 02:00 EST -> 03:00 EDT
    (
        crontab(30, 2),
        NEW_YORK,
        "2026-03-07T12:00:00",
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
    ),
    (
        crontab("*/30"),
        NEW_YORK,
        "2026-03-08T01:00:00",
        ["2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"],
    ),
    (
        crontab(0, 9, day_of_week="sun"),
        NEW_YORK,
        "2026-03-01T10:00:00",
        ["2026-03-08T09:00:00-04:00", "2026-03-15T09:00:00-04:00"],
    ),
    # America/New_York falls back 2026-11-01 02:00 EDT -> 01:00 EST
    (
        crontab(30, 1),
        NEW_YORK,
        "2026-10-31T12:00:00",
        ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
    ),
    (
        crontab(0),
        NEW_YORK,
        "2026-10-31T23:30:00",
        [
            "2026-11-01T00:00:00-04:00",
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T02:00:00-05:00",
        ],
    ),
    # every N seconds: a grid anchored at the epoch, the same in every zone
    (
        schedule(1),
        UTC,
        "2026-01-01T00:00:00.250",
        ["2026-01-01T00:00:01+00:00", "2026-01-01T00:00:02+00:00"],
    ),
    (schedule(timedelta(minutes=10)), UTC, "2026-01-01T00:00:00", ["2026-01-01T00:10:00+00:00"]),
    (
        schedule(3600),
        BERLIN,
        "2026-10-25T01:30:00+02:00",
        ["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"],
    ),
]


@pytest.mark.parametrize(
    ("sched", "tz", "after", "expected"), CASES, ids=[f"{i}" for i in range(len(CASES))]
)
def test_next_due_times(
    sched: crontab | schedule, tz: ZoneInfo | timezone, after: str, expected: list[str]
) -> None:
    assert _runs(sched, after, tz, len(expected)) == expected


def test_a_day_of_dst_changes_runs_each_daily_entry_once() -> None:
    # Given a daily entry at every minute of the night, When a DST weekend passes,
    # Expect exactly one run per entry on the day of the change (none doubled, none lost).
    for tz, start in (
        (BERLIN, "2026-03-28T23:59:00"),
        (BERLIN, "2026-10-24T23:59:00"),
        (NEW_YORK, "2026-03-07T23:59:00"),
        (NEW_YORK, "2026-10-31T23:59:00"),
    ):
        for hour in range(5):
            for minute in (0, 30, 59):
                runs = _runs(crontab(minute, hour), start, tz, 2)
                day = datetime.fromisoformat(start).date() + timedelta(days=1)
                assert runs[0][:10] == day.isoformat(), (tz, hour, minute, runs)
                assert runs[1][:10] == (day + timedelta(days=1)).isoformat(), (
                    tz,
                    hour,
                    minute,
                    runs,
                )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"minute": "61"}, "minute='61'"),
        ({"hour": "25"}, "hour='25'"),
        ({"day_of_week": "funday"}, "day_of_week='funday'"),
        ({"month_of_year": "13"}, "month_of_year='13'"),
        ({"minute": ""}, "minute is empty"),
        ({"minute": [1, "x"]}, "minute=[1, 'x']"),
    ],
)
def test_bad_crontab_fields_name_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(
        (ValueError, TypeError), match=message.replace("[", r"\[").replace("]", r"\]")
    ):
        crontab(**kwargs)  # type: ignore[arg-type]


def test_schedule_values_of_beat_schedule() -> None:
    assert as_schedule(10, "e") == schedule(10)
    assert as_schedule(timedelta(seconds=2.5), "e") == schedule(2.5)
    assert as_schedule(crontab(0), "e") == crontab(0)
    with pytest.raises(TypeError, match="periodic task 'e': schedule must be seconds"):
        as_schedule("10", "e")
    with pytest.raises(ValueError, match="at least 1 ms"):
        schedule(0)
