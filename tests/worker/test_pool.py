"""What every pool declares for remote control: a fixed size refuses to change, and
terminate signals the process that runs the task, never this one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from celeriac import Celeriac
from celeriac.control.state_handle import StateHandle
from celeriac.exceptions import CeleriacError
from celeriac.message import Delivery
from celeriac.task import Request
from celeriac.worker.job import Job
from celeriac.worker.options import WorkerOptions
from celeriac.worker.pool import Pool, signal_number
from celeriac.worker.slots import Slot
from celeriac.worker.state import WorkerState


class _FixedPool(Pool):
    """A pool that declares nothing beyond running: every other answer is the default."""

    def run(self) -> int:
        return 0


@pytest.fixture
def app() -> Iterator[Celeriac]:
    app = Celeriac("pool-test", broker="memory://pool-test", backend="memory://pool-test")

    @app.task(name="t.nap")
    def nap() -> None:
        pass

    yield app
    app.close()


def _pool(app: Celeriac) -> _FixedPool:
    state = WorkerState(WorkerOptions("pool@test", ("celeriac",), "threads", 2, 1))
    pool = _FixedPool(app, state.options, state, lambda text: None)
    state.pool = pool
    return pool


def _running(app: Celeriac, pool: Pool, pid: int) -> str:
    """A slot of ``pool`` whose consumer (process ``pid``) runs a task; its id."""
    message = app.tasks["t.nap"].build_message((), {})
    delivery = Delivery(message.id, message.queue, message.priority, b"", "tag")
    job = Job(app, message, app.tasks["t.nap"], Request(id=message.id), delivery)
    slot = Slot(0, shared=False)
    slot.reset(pid)
    slot.begin(job, None)
    pool.state.add_slot(slot)
    return message.id


def test_a_fixed_size_pool_refuses_to_grow_or_shrink_and_says_what_to_do(
    app: Celeriac,
) -> None:
    handle = StateHandle(app, _pool(app).state)
    with pytest.raises(CeleriacError, match="threads pool cannot grow at runtime.*-c"):
        handle.pool_grow(1)
    with pytest.raises(CeleriacError, match="threads pool cannot shrink at runtime"):
        handle.pool_shrink(1)


def test_a_pool_in_this_process_has_no_children_to_ask_and_holds_nothing_by_default(
    app: Celeriac,
) -> None:
    pool = _pool(app)
    assert not pool.consumers_in_children
    assert pool.ask_children("active") == {} and pool.reserved_deliveries() == []


def test_terminate_kills_the_process_running_the_task(app: Celeriac) -> None:
    pool = _pool(app)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        task_id = _running(app, pool, child.pid)
        assert not pool.terminate("someone-else", "SIGTERM")
        assert pool.terminate(task_id, "SIGTERM")  # SIGTERM would let it finish: killed
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        child.kill()
        child.wait()


def test_terminate_cannot_stop_a_task_running_in_this_process(app: Celeriac) -> None:
    pool = _pool(app)
    task_id = _running(app, pool, os.getpid())  # a consumer thread's slot
    assert not pool.terminate(task_id, "SIGKILL")


def test_signal_names_and_numbers() -> None:
    assert signal_number("SIGKILL") == signal_number("kill") == signal_number("9") == 9
    with pytest.raises(ValueError, match="unknown signal 'SIGNOPE'"):
        signal_number("SIGNOPE")
