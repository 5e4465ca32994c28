"""Asking prefork children what only they know: one pipe per child, answered by a thread.

``inspect active`` shows the arguments of each running task and ``inspect
reserved`` the messages each consumer has prefetched and not started. Under
prefork both live only in the child's memory: its running job and its private
buffer. So the supervisor asks: it makes a pipe before forking each child
(:meth:`Inquirer.open`), and a daemon thread in the child (:func:`serve`)
answers questions from what the child keeps anyway.

Why this design rather than another:

* Next to nothing on the hot path. A child does no extra work per fetch, and per
  task only keeps a reference to the running job (``Slot.job``); decoding
  prefetched messages, cutting large arguments and writing JSON happen only
  when someone asks, in the thread that answers.
* The shared slot record cannot hold it for free: copying arguments, or the ids
  of buffered messages, into shared memory at every start and fetch is work for
  every task on behalf of a rare inspection, and a fixed-size record has no room
  for arguments of any size.
* The broker cannot answer on every broker: Redis and SQLite record which
  consumer holds each message, RabbitMQ shows no consumer's unacknowledged
  messages, and no broker knows which held message has started.
* Children replying on the control stream themselves would give the sender
  several replies per worker (the client keeps one per worker) and cost a trip
  through the broker per child (a poll interval on SQLite).

A child that does not answer within :data:`ANSWER_TIMEOUT` (it is starting, or
a C extension holds the GIL) is left out of the answer; ``inspect active`` then
shows its task from the slot record, without arguments. Each question carries a
number, so a late answer to an earlier question is recognised and dropped.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection, wait
from typing import Any

import orjson

from ..control.protocol import dumps

logger = logging.getLogger("celeriac.worker")

ANSWER_TIMEOUT = 0.5  # seconds the supervisor waits for its children, all together
QUESTIONS = ("active", "reserved", "give_back")  # give_back: [task ids] -> the ids given back


def serve(line: Connection, answer: Callable[..., Any]) -> threading.Thread:
    """In a child: answer each question read from ``line`` with ``answer(question)``, or
    ``answer(question, argument)`` for a question asked with one."""
    thread = threading.Thread(
        target=_serve, args=(line, answer), name="celeriac-inquiry", daemon=True
    )
    thread.start()
    return thread


def _serve(line: Connection, answer: Callable[..., Any]) -> None:
    with line:
        _answer_each(line, answer)


def _answer_each(line: Connection, answer: Callable[..., Any]) -> None:
    while True:
        try:
            number, question, *argument = orjson.loads(line.recv_bytes())
        except (EOFError, OSError):
            return  # the supervisor closed its end: it is gone, or replaced this child
        except (orjson.JSONDecodeError, TypeError, ValueError):
            logger.warning("inquiry: a question that is not [number, question]; ignored")
            continue
        try:
            data = dumps([number, answer(question, *argument)])
        except Exception as exc:  # a bug here must not end the thread: say it and go on
            logger.exception("inquiry %r failed", question)
            data = dumps([number, {"error": f"{type(exc).__name__}: {exc}"}])
        try:
            line.send_bytes(data)
        except OSError:
            return


class Inquirer:
    """The supervisor's ends of its children's pipes, and the questions it asks them.

    The supervisor's loop opens and closes lines as children come and go; the
    control thread asks. A line is closed only while nobody asks, so a
    question never goes to a descriptor that was closed and reused meanwhile.
    """

    def __init__(self) -> None:
        self._lines: dict[int, Connection] = {}  # slot index -> the supervisor's end
        self._spent: list[Connection] = []  # ends of exited children, closed when free
        self._asking = threading.Lock()
        self._number = 0

    def open(self, index: int) -> Connection:
        """A pipe for the child about to be forked for slot ``index``; returns its end."""
        mine, theirs = multiprocessing.Pipe(duplex=True)
        self.close(index)
        self._lines[index] = mine
        return theirs

    def close(self, index: int) -> None:
        """The child of slot ``index`` exited: its line is closed once nobody asks."""
        line = self._lines.pop(index, None)
        if line is not None:
            self._spent.append(line)
        if self._spent and self._asking.acquire(blocking=False):
            try:
                self._close_spent()
            finally:
                self._asking.release()

    def close_all(self) -> None:
        with self._asking:
            self._spent.extend(self._lines.values())
            self._lines.clear()
            self._close_spent()

    def ends(self) -> list[Connection]:
        """Every supervisor end now open (a new child closes its inherited copies)."""
        return [*self._lines.values(), *self._spent]

    def _close_spent(self) -> None:
        spent, self._spent = self._spent, []
        for line in spent:
            line.close()

    def ask(
        self, question: str, timeout: float = ANSWER_TIMEOUT, argument: Any = None
    ) -> dict[int, Any]:
        """Each child's answer by slot index; children that did not answer in time are absent."""
        if question not in QUESTIONS:
            raise ValueError(f"unknown question {question!r}: ask one of {', '.join(QUESTIONS)}")
        with self._asking:
            self._number += 1
            waiting = self._send(self._number, question, argument)
            return self._collect(self._number, waiting, time.monotonic() + timeout)

    def _send(self, number: int, question: str, argument: Any) -> dict[Connection, int]:
        waiting = {}
        data = orjson.dumps(
            [number, question] if argument is None else [number, question, argument]
        )
        for index, line in list(self._lines.items()):
            try:
                line.send_bytes(data)
            except OSError:  # the child is gone; the loop closes its line
                continue
            waiting[line] = index
        return waiting

    def _collect(
        self, number: int, waiting: dict[Connection, int], deadline: float
    ) -> dict[int, Any]:
        answers: dict[int, Any] = {}
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                logger.debug("inquiry: slots %s did not answer in time", sorted(waiting.values()))
                break
            for ready in wait(list(waiting), remaining):
                line = ready if isinstance(ready, Connection) else None
                if line is None:
                    continue
                try:
                    got, value = orjson.loads(line.recv_bytes())
                except (EOFError, OSError, orjson.JSONDecodeError, ValueError, TypeError):
                    waiting.pop(line)  # the child died while answering
                    continue
                if got == number:  # else a late answer to an earlier question
                    answers[waiting.pop(line)] = value
        return answers


def close_inherited(lines: Iterable[Connection]) -> None:
    """In a new child: close the copies of the supervisor's ends it inherited at fork."""
    for line in lines:
        with contextlib.suppress(OSError):
            line.close()
