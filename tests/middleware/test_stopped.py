"""A task stopped at its hard time limit is finished off by whichever worker takes its
handed-back message: its record and events still name the worker that ran it."""

from __future__ import annotations

import uuid

import orjson

from celeriac import Celeriac
from celeriac.events import EVENTS_STREAM, dispatcher_for
from celeriac.events.event import decode_item
from celeriac.middleware.revocation import STOPPED_FLAG
from celeriac.worker.job import Executor


def test_the_failure_names_the_worker_that_ran_it_and_no_revoked_event_follows() -> None:
    url = f"memory://stopped-{uuid.uuid4().hex}"
    app = Celeriac("stopped", broker=url, backend=url, set_as_current=False)

    @app.task(name="t.slow")
    def slow() -> None:
        raise AssertionError("a stopped task is not run again")

    try:
        sent = slow.delay()
        flags = app.broker.flags
        assert flags is not None
        reason = "task t.slow ran past its hard time limit and was stopped after 1.0s"
        flag = {"reason": reason, "started": 1.0, "stopped": 2.0, "hostname": "ran@host"}
        flags.set(STOPPED_FLAG + sent.id, orjson.dumps(flag).decode())
        app.revoke([sent.id])
        executor = Executor(app, "other@host", "c1", app.connect_broker(), app.connect_backend())
        [delivery] = app.broker.fetch(["celeriac"], "c1", 1, 1.0)
        executor.process(delivery)
        executor.close()

        meta = app.backend.get(sent.id)
        assert meta.state == "FAILURE" and meta.worker == "ran@host"
        assert meta.result["exc_type"] == "TimeLimitExceeded"
        assert dispatcher_for(app).flush()
        events = [
            event
            for position, data in app.broker.streams.read(EVENTS_STREAM, "0", 1000)
            for event in decode_item(position, data)
            if event.task_id == sent.id
        ]
        assert not [e for e in events if e.hostname == "other@host"], events
    finally:
        dispatcher_for(app).close()
