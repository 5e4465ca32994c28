"""The supervisor asks its children over pipes: answers by slot, a silent or dead child
left out within the timeout, a late answer never taken for the next question's."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from celeriac.worker.inquiry import Inquirer, serve


def _child(inquirer: Inquirer, index: int, answer: Callable[[str], Any]) -> None:
    """A child's answering thread, over a real pipe (no fork needed to test the protocol)."""
    serve(inquirer.open(index), answer)


def test_each_child_answers_under_its_slot() -> None:
    inquirer = Inquirer()
    _child(inquirer, 0, lambda q: [f"{q} of 0"])
    _child(inquirer, 1, lambda q: [f"{q} of 1"])
    try:
        assert inquirer.ask("reserved") == {0: ["reserved of 0"], 1: ["reserved of 1"]}
        assert inquirer.ask("active") == {0: ["active of 0"], 1: ["active of 1"]}
    finally:
        inquirer.close_all()


def test_a_silent_child_is_left_out_and_its_late_answer_is_dropped() -> None:
    inquirer = Inquirer()
    release = threading.Event()
    calls: list[str] = []

    def slow(question: str) -> list[str]:
        calls.append(question)
        if len(calls) == 1:
            release.wait(10)  # the first question is answered only after the asker gave up
        return [f"answer {len(calls)}"]

    _child(inquirer, 0, slow)
    _child(inquirer, 1, lambda q: ["quick"])
    try:
        started = time.monotonic()
        assert inquirer.ask("active", timeout=0.2) == {1: ["quick"]}
        assert time.monotonic() - started < 2.0
        release.set()
        # The late "answer 1" is still in the pipe: the next question must get "answer 2".
        assert inquirer.ask("reserved", timeout=5.0) == {0: ["answer 2"], 1: ["quick"]}
    finally:
        inquirer.close_all()


def test_a_child_that_fails_to_answer_says_why() -> None:
    inquirer = Inquirer()

    def broken(question: str) -> Any:
        raise RuntimeError("no buffer")

    _child(inquirer, 0, broken)
    try:
        assert inquirer.ask("reserved") == {0: {"error": "RuntimeError: no buffer"}}
    finally:
        inquirer.close_all()


def test_a_closed_line_is_not_asked_and_a_dead_child_costs_no_timeout() -> None:
    inquirer = Inquirer()
    _child(inquirer, 0, lambda q: ["zero"])
    theirs = inquirer.open(1)
    theirs.close()  # the child of slot 1 died before answering
    try:
        started = time.monotonic()
        assert inquirer.ask("active", timeout=5.0) == {0: ["zero"]}
        assert time.monotonic() - started < 2.0
        inquirer.close(0)
        assert inquirer.ask("active", timeout=0.5) == {}
    finally:
        inquirer.close_all()


def test_an_unknown_question_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown question 'stats'"):
        Inquirer().ask("stats")


def test_a_question_asked_with_an_argument_reaches_the_child_with_it() -> None:
    """When ``give_back`` is asked with task ids, Expect each child's answer to be given
    them, and a question without one answered as before."""
    inquirer = Inquirer()
    _child(inquirer, 0, lambda q, *argument: [q, *argument])
    try:
        assert inquirer.ask("give_back", argument=["a", "b"]) == {0: ["give_back", ["a", "b"]]}
        assert inquirer.ask("reserved") == {0: ["reserved"]}
    finally:
        inquirer.close_all()
