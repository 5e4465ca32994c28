"""Slot records: what a child publishes, the supervisor reads, with no message between."""

from __future__ import annotations

import multiprocessing
import time

from celeriac import Celeriac
from celeriac.message import Delivery
from celeriac.task import Request
from celeriac.worker.job import Job
from celeriac.worker.slots import Slot

app = Celeriac("slots", broker="memory://slots", set_as_current=False)


@app.task
def work() -> None: ...


def make_job(task_id: str, tag: str) -> Job:
    message = work.build_message((), {}, task_id=task_id)
    delivery = Delivery(task_id, message.queue, message.priority, b"", tag)
    return Job(app, message, work, Request.from_message(message), delivery, started_at=time.time())


def publish_from_child(slot: Slot) -> None:
    slot.mark_ready()
    slot.begin(make_job("task-1", "celeriac:42"), hard_deadline=time.monotonic() + 5)


def test_a_forked_child_publishes_its_running_task_to_the_parent() -> None:
    slot = Slot(3, shared=True)
    child = multiprocessing.get_context("fork").Process(target=publish_from_child, args=(slot,))
    child.start()
    child.join(10)
    assert child.exitcode == 0
    running = slot.running()
    assert running is not None and slot.ready
    assert (running.task_id, running.task_name, running.tag) == ("task-1", work.name, "celeriac:42")
    assert running.hard_deadline is not None and running.hard_deadline > time.monotonic()


def test_ending_a_task_clears_it_and_counts_it() -> None:
    slot = Slot(0, shared=False)
    slot.begin(make_job("t", "tag"), None)
    slot.end()
    assert slot.running() is None and slot.processed == 1


def test_a_record_torn_by_a_killed_writer_is_not_trusted() -> None:
    slot = Slot(0, shared=False)
    slot.begin(make_job("t", "tag"), None)
    slot.record.seq += 1  # the writer died halfway through its next update
    assert slot.torn
    assert slot.running(attempts=3) is None


def test_a_tag_too_long_to_publish_is_reported_missing_not_cut() -> None:
    slot = Slot(0, shared=False)
    slot.begin(make_job("t", "x" * 1000), None)
    running = slot.running()
    assert running is not None and running.tag is None
