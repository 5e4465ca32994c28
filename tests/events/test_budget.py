"""The event stream keeps event_queue_maxlen events, however many each item carries."""

from __future__ import annotations

from celeriac.events.budget import StreamBudget


def _kept_events(writes: list[tuple[int, int]], maxlen: int) -> int:
    """Events in the newest ``maxlen`` items of a stream these writes made (one writer)."""
    per_item = [events / items for items, events in writes for _ in range(items)]
    return round(sum(per_item[-maxlen:]))


def test_a_busy_write_after_a_quiet_spell_keeps_every_event_under_the_bound() -> None:
    # Given 5,000 lone events, then packs of 500 events per item
    budget = StreamBudget()
    writes = [(1, 1)] * 5_000 + [(2, 1_000)] * 40
    for items, events in writes:
        maxlen = budget.maxlen(items, events, max_events=100_000)
    # Expect: 45,000 events written, all of them still in the stream
    assert _kept_events(writes, maxlen) == 45_000


def test_past_the_bound_about_the_newest_max_events_stay() -> None:
    budget = StreamBudget()
    writes = [(1, 1)] * 3_000 + [(1, 100)] * 100 + [(2, 50)] * 500
    for items, events in writes:
        maxlen = budget.maxlen(items, events, max_events=10_000)
    kept = _kept_events(writes, maxlen)
    assert 10_000 <= kept <= 10_050  # the oldest write in the window holds 50


def test_the_window_forgets_writes_beyond_the_bound() -> None:
    budget = StreamBudget()
    for _ in range(100_000):
        budget.maxlen(1, 5, max_events=1_000)
    assert budget.maxlen(1, 5, max_events=1_000) == 1_000 // 5
