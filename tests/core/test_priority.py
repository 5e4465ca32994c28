"""One priority check, in the envelope every message passes on its way to a broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from celeriac import Celeriac
from celeriac.exceptions import ConfigurationError
from celeriac.message import Envelope, Message
from celeriac.middleware import Middleware

OUT_OF_RANGE = r"priority {} is out of range: use an int from 0 \(lowest\) to 9 \(highest\)"


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Iterator[Celeriac]:
    url = f"memory://{request.node.name}"
    app = Celeriac("p", broker=url, backend=url, set_as_current=False)

    @app.task(name="t.work")
    def work() -> None:
        pass

    yield app
    app.close()


def test_an_envelope_refuses_a_priority_outside_0_to_9() -> None:
    for priority in (0, 9):
        assert Envelope("m", "q", priority, b"").priority == priority
    for bad in (10, -1, "9", 2.5, None):
        with pytest.raises(ConfigurationError, match=OUT_OF_RANGE.format(repr(bad))):
            Envelope("m", "q", bad, b"")  # type: ignore[arg-type]


def test_a_send_with_a_bad_priority_fails_clearly_and_sends_nothing(app: Celeriac) -> None:
    with pytest.raises(ConfigurationError, match=OUT_OF_RANGE.format(12)):
        app.tasks["t.work"].apply_async(priority=12)
    app.conf.task_routes = {"t.work": {"queue": "q", "priority": 11}}
    with pytest.raises(ConfigurationError, match=OUT_OF_RANGE.format(11)):
        app.tasks["t.work"].delay()
    assert app.broker.queues() == []


def test_a_priority_a_middleware_sets_is_checked_too(app: Celeriac) -> None:
    class Urgent(Middleware):
        def before_enqueue(self, app: Celeriac, message: Message) -> Message:
            return message.replace(priority=42)

    app.middleware.add(Urgent())
    with pytest.raises(ConfigurationError, match=OUT_OF_RANGE.format(42)):
        app.tasks["t.work"].delay()
    assert app.broker.queues() == []
