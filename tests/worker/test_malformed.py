"""A worker dead-letters every body it cannot run as sent, naming the field, and runs the rest."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import orjson
import pytest

from celeriac import Celeriac
from celeriac.message import Envelope
from tests.core.test_message_fields import BAD_FIELDS
from tests.worker.test_consumer import make_consumer, run_until


@pytest.fixture
def app() -> Iterator[Celeriac]:
    url = f"memory://malformed-{uuid.uuid4().hex}"
    app = Celeriac("malformed", broker=url, backend=url, set_as_current=False)
    app.conf.worker_send_task_events = False
    yield app
    app.close()


def test_every_malformed_body_is_dead_lettered_with_its_field_and_none_runs(
    app: Celeriac,
) -> None:
    ran: list[tuple[object, ...]] = []

    @app.task(name="proj.add")
    def add(*args: object, **kwargs: object) -> None:
        ran.append(args)

    # Given one bad body per field shape, between good messages
    bad = []
    for i, (field, value) in enumerate(BAD_FIELDS):
        body = {"v": 1, "task": "proj.add", "args": [i], "sent_at": 1.0, "group_id": "g"}
        body[field] = value
        bad.append(Envelope(f"bad-{i}", "celeriac", 5, orjson.dumps(body)))
    app.broker.publish(bad)
    results = [add.delay("good", i) for i in range(3)]
    # When a worker consumes them all
    run_until(make_consumer(app, prefetch=4), lambda: all(r.ready() for r in results))
    # Expect the good ones ran, every bad one is a dead letter naming its field
    assert sorted(ran) == [("good", i) for i in range(3)]
    dead = {d.id: d.reason for d in app.broker.dead_letters("celeriac")}
    for i, (field, _) in enumerate(BAD_FIELDS):
        assert f"field '{field}'" in dead[f"bad-{i}"], dead[f"bad-{i}"]
