"""The task list's time range: ``since`` and ``until`` as the API and the page give them.

A moment is a Unix timestamp (``1795608000``), an ISO 8601 time
(``2026-11-25T12:00:00Z``; one without an offset is UTC), or a duration back
from now: a number and a unit, ``s``, ``m``, ``h``, ``d`` or ``w`` (``15m``,
``1h``, ``24h``, ``7d``).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
#: the choices of the task list page: (value, label)
RANGES = (("", "any time"), ("15m", "last 15 min"), ("1h", "last hour"),
          ("24h", "last 24 h"), ("7d", "last 7 days"))  # fmt: skip


def _invalid(name: str, text: str) -> ValueError:
    return ValueError(
        f"{name}={text!r}: give a Unix timestamp (1795608000), an ISO 8601 time "
        "(2026-11-25T12:00:00Z) or a duration back from now (15m, 1h, 24h, 7d)"
    )


def parse_moment(value: object, now: float, name: str = "since") -> float | None:
    """``value`` as a Unix timestamp; None when it is empty; ValueError saying what to give."""
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    duration = _DURATION.fullmatch(text.lower())
    if duration:
        return now - float(duration.group(1)) * UNITS[duration.group(2)]
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise _invalid(name, text)
        return number
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _invalid(name, text) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def time_range(since: object, until: object, now: float) -> tuple[float | None, float | None]:
    """``since`` and ``until`` parsed; ValueError when the range is empty by construction."""
    start, end = parse_moment(since, now, "since"), parse_moment(until, now, "until")
    if start is not None and end is not None and start >= end:
        raise ValueError(f"since={since!r} is not before until={until!r}")
    return start, end
