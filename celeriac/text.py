"""Words for people: counts with the noun in the right number."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 message``, ``2 messages``, ``0 messages``; ``plural`` when adding "s" is wrong."""
    return f"{count} {noun if count == 1 else (plural or noun + 's')}"


__all__ = ["counted"]
