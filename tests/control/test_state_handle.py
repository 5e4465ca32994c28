"""The worker as ``inspect`` sees it, read in-process (threads, solo, asyncio) or asked of
prefork children, with the slot records as the fallback when a child stays silent."""

from __future__ import annotations

from typing import Any

from celeriac import Celeriac
from celeriac.control.state_handle import StateHandle
from celeriac.message import Delivery, encode
from celeriac.task import Request
from celeriac.worker.job import Job
from celeriac.worker.options import WorkerOptions
from celeriac.worker.pool import Pool
from celeriac.worker.slots import Slot
from celeriac.worker.state import WorkerState


def _state(pool: str) -> WorkerState:
    return WorkerState(WorkerOptions("state-handle@test", ("celeriac",), pool, 2, 2))


def _job(app: Celeriac, *args: Any, **kwargs: Any) -> Job:
    message = app.tasks["t.add"].build_message(args, kwargs)
    delivery = Delivery(message.id, message.queue, message.priority, b"", "tag")
    request = Request(id=message.id, hostname="state-handle@test")
    return Job(app, message, app.tasks["t.add"], request, delivery, started_at=1.0)


class _InProcessPool(Pool):
    def __init__(self, held: list[Delivery]) -> None:
        self.held = held

    def run(self) -> int:
        return 0

    def reserved_deliveries(self) -> list[Delivery]:
        return list(self.held)


class _PreforkPool(Pool):
    consumers_in_children = True

    def __init__(self, answers: dict[str, dict[int, Any]]) -> None:
        self.answers = answers

    def run(self) -> int:
        return 0

    def ask_children(self, question: str) -> dict[int, Any]:
        return self.answers[question]


def test_in_process_pools_show_arguments_and_prefetched_messages(app: Celeriac) -> None:
    state = _state("threads")
    busy, idle = Slot(0, shared=False), Slot(1, shared=False)
    state.add_slot(busy)
    state.add_slot(idle)
    job = _job(app, 1, 2)
    busy.begin(job, None)
    waiting = app.tasks["t.add"].build_message((3, 4), {})
    held = Delivery(waiting.id, waiting.queue, 9, encode(waiting, app.codec), "tag-2", 2)
    state.pool = _InProcessPool([held])
    handle = StateHandle(app, state)

    [running] = handle.active_tasks()
    assert (running["id"], running["args"], running["slot"]) == (job.message.id, [1, 2], 0)
    [reserved] = handle.reserved_tasks()
    assert (reserved["id"], reserved["args"], reserved["deliveries"]) == (waiting.id, [3, 4], 2)
    assert handle.active_count() == 1

    busy.end()
    assert handle.active_tasks() == [] and handle.active_count() == 0


def test_a_silent_prefork_child_still_shows_its_task_from_the_slot_record(app: Celeriac) -> None:
    state = _state("prefork")
    answering, silent = Slot(0, shared=True), Slot(1, shared=True)
    state.add_slot(answering)
    state.add_slot(silent)
    answering.begin(_job(app, 1, 1), None)  # what the children published in shared memory
    silent_job = _job(app, 2, 2)
    silent.begin(silent_job, None)
    told = {"id": "from-child-0", "slot": 0, "args": [1, 1]}
    state.pool = _PreforkPool(
        {
            "active": {0: [told]},  # slot 1 did not answer in time
            "reserved": {1: [{"id": "r-1"}], 0: [{"id": "r-0"}]},
        }
    )
    handle = StateHandle(app, state)

    active = handle.active_tasks()
    assert active[0] == told
    assert active[1]["id"] == silent_job.message.id and active[1]["slot"] == 1
    assert "args" not in active[1]  # the record has no room for them
    assert [t["id"] for t in handle.reserved_tasks()] == ["r-0", "r-1"]  # by slot


def test_a_prefork_child_answering_with_an_error_counts_as_silent(app: Celeriac) -> None:
    state = _state("prefork")
    slot = Slot(0, shared=True)
    state.add_slot(slot)
    slot.begin(_job(app), None)
    state.pool = _PreforkPool({"active": {0: {"error": "boom"}}, "reserved": {0: {"error": "x"}}})
    handle = StateHandle(app, state)
    assert [t["slot"] for t in handle.active_tasks()] == [0]
    assert handle.reserved_tasks() == []
