"""Exponential backoff: the delays each retry loop waits, from one helper."""

from __future__ import annotations

import random

import pytest

from celeriac import backoff
from celeriac.backoff import Backoff, exponential


def test_exponential_doubles_from_first_up_to_the_cap() -> None:
    assert [exponential(n, first=0.5, cap=30.0) for n in range(8)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        30.0,
        30.0,
    ]
    assert exponential(3, first=0.01) == 0.08  # no cap
    assert exponential(2, first=1.0, factor=3.0) == 9.0


def test_exponential_with_jitter_draws_up_to_the_delay() -> None:
    random.seed(7)
    draws = [exponential(4, first=1.0, cap=10.0, jitter=True) for _ in range(200)]
    assert all(0.0 <= d <= 10.0 for d in draws)
    assert len(set(draws)) > 100  # spread out, not one value


def test_a_backoff_walks_the_delays_and_starts_over_after_a_success() -> None:
    pauses = Backoff(0.05, cap=1.0)
    assert [pauses.next() for _ in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    pauses.reset()
    assert pauses.next() == 0.05


def test_a_backoff_sleeps_no_longer_than_what_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(backoff.time, "sleep", slept.append)
    pauses = Backoff(0.1, cap=5.0)
    pauses.sleep()
    pauses.sleep(0.15)
    pauses.sleep(-1.0)  # the deadline passed while trying: no sleep, no error
    assert slept == [0.1, 0.15, 0.0]
    assert pauses.next() == 0.8  # each sleep took its step, shortened or not
