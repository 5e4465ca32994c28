"""Rate strings: ``"10/s"``, ``"100/m"``, ``"2.5/h"``, or a number meaning per second."""

from __future__ import annotations

from .exceptions import ConfigurationError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_rate(rate: str | float | int | None) -> float | None:
    """Tasks per second, or None for no limit."""
    if rate is None or rate == "" or rate == 0:
        return None
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        if rate < 0:
            raise ConfigurationError(f"rate limit {rate!r} must be positive")
        return float(rate)
    if isinstance(rate, str):
        count, _, unit = rate.strip().partition("/")
        try:
            per_unit = float(count)
        except ValueError:
            per_unit = -1.0
        seconds = _UNITS.get(unit.strip().lower()[:1] or "s")
        if per_unit > 0 and seconds is not None:
            return per_unit / seconds
        if per_unit == 0 and seconds is not None:
            return None
    raise ConfigurationError(
        f"rate limit {rate!r} is not understood: write N/s, N/m or N/h, such as '10/m'"
    )
