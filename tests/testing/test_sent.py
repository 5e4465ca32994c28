"""What was sent, and wrong sends failing at delay() under the test kit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from celeriac import Celeriac
from celeriac.exceptions import NotRegistered, SerializationError
from celeriac.testing import InProcessWorker, SentRecorder, memory_app, record_sent


@pytest.fixture
def app() -> Iterator[Celeriac]:
    app = memory_app("sent", task_routes={"sent.report": {"queue": "reports"}})

    @app.task(name="sent.add")
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(name="sent.report", priority=2)
    def report(day: str, *, full: bool = False) -> str:
        return day

    yield app
    app.close()


@pytest.fixture
def sent(app: Celeriac) -> Iterator[SentRecorder]:
    with record_sent(app) as recorder:
        yield recorder


def test_records_task_args_queue_priority_and_eta(app: Celeriac, sent: SentRecorder) -> None:
    add, report = app.tasks["sent.add"], app.tasks["sent.report"]
    when = datetime.now(timezone.utc) + timedelta(hours=1)
    first = add.delay(1, 2)
    report.apply_async(("monday",), {"full": True}, eta=when)
    add.apply_async((3, 4), queue="urgent", priority=9, countdown=30)

    assert sent.names() == ["sent.add", "sent.report", "sent.add"]
    one, two, three = sent.sent
    assert (one.id, one.args, one.kwargs, one.queue, one.priority) == (
        first.id,
        (1, 2),
        {},
        "celeriac",
        5,
    )
    assert one.eta is None and one.countdown is None
    assert (two.args, two.kwargs, two.queue, two.priority) == (
        ("monday",),
        {"full": True},
        "reports",
        2,
    )
    assert two.eta is not None and abs((two.eta - when).total_seconds()) < 0.01
    assert (three.queue, three.priority) == ("urgent", 9)
    assert three.countdown is not None and 29.9 < three.countdown <= 30.0
    assert [s.args for s in sent.of(add)] == [(1, 2), (3, 4)]
    assert sent.of("sent.report") == [two]


def test_the_recorder_goes_when_the_block_ends(app: Celeriac) -> None:
    with record_sent(app) as recorder:
        app.tasks["sent.add"].delay(1, 1)
    app.tasks["sent.add"].delay(2, 2)
    assert len(recorder) == 1


def test_an_unregistered_task_fails_at_the_send(app: Celeriac, sent: SentRecorder) -> None:
    with pytest.raises(NotRegistered, match=r"'proj.missing' is not registered with app 'sent'"):
        app.send_task("proj.missing", (1,))
    assert sent.sent == []


def test_an_unserializable_argument_fails_at_delay(app: Celeriac, sent: SentRecorder) -> None:
    named = r"^sent.add\[.*\]: args\[1\] is a builtins.object"
    with pytest.raises(SerializationError, match=named):
        app.tasks["sent.add"].delay(1, object())
    assert sent.sent == []


def test_a_wrong_argument_count_fails_at_delay(app: Celeriac, sent: SentRecorder) -> None:
    add = app.tasks["sent.add"]
    with pytest.raises(TypeError, match=r"^sent.add\(a: int, b: int\): too many positional"):
        add.delay(1, 2, 3)
    with pytest.raises(TypeError, match="missing a required argument: 'b'"):
        add.delay(1)
    assert sent.sent == []


def test_the_worker_records_what_tasks_send(app: Celeriac) -> None:
    add = app.tasks["sent.add"]
    with InProcessWorker(app) as worker:
        (add.s(1, 2) | add.s(10)).delay()
        worker.join()
        # the second step was sent by the worker once the first finished
        assert [(s.task, s.args) for s in worker.sent] == [
            ("sent.add", (1, 2)),
            ("sent.add", (3, 10)),
        ]
        assert worker.sent.sent[1].parent_id == worker.sent.sent[0].id


def test_a_bound_task_names_the_arguments_a_caller_passes(app: Celeriac) -> None:
    @app.task(name="sent.greet", bind=True)
    def greet(self: object, name: str, punctuation: str = "!") -> str:
        return name + punctuation

    with pytest.raises(TypeError) as raised:
        greet.delay()
    assert str(raised.value) == (
        "sent.greet(name: str, punctuation: str = '!'): missing a required argument: 'name'"
    )
