"""A Celery-shaped app with a task base class, class-based tasks, progress reports,
Ignore, Reject and tasks that send tasks; only the imports differ from Celery's.

Each hook appends ``<hook> <pid> <details>`` to the file ``$HOOKS_LOG``.
"""

import os
import time

from celeriac import Celeriac as Celery
from celeriac import Task
from celeriac.exceptions import Ignore, Reject

app = Celery("hooks_app")


def record(*words):
    line = " ".join(str(w) for w in (words[0], os.getpid(), *words[1:])) + "\n"
    fd = os.open(os.environ["HOOKS_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class Recorded(Task):
    """Celery's documented hooks, each recording what it was given."""

    def before_start(self, task_id, args, kwargs):
        record("before_start", self.name, task_id, list(args))

    def on_success(self, retval, task_id, args, kwargs):
        record("on_success", self.name, task_id, retval, self.request.id == task_id)

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        record("on_failure", self.name, task_id, type(exc).__name__, "Traceback" in str(einfo))

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        record("on_retry", self.name, task_id, type(exc).__name__)

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        record("after_return", self.name, task_id, status)


@app.task(base=Recorded)
def add(x, y):
    return x + y


@app.task(base=Recorded)
def fail():
    raise ValueError("boom")


@app.task(base=Recorded, bind=True, max_retries=1, default_retry_delay=0)
def flaky(self):
    if self.request.retries == 0:
        raise self.retry(exc=KeyError("once"))
    return "again"


class Multiply(app.Task):
    name = "hooks_app.multiply"

    def run(self, x, y):
        return x * y


multiply = app.register_task(Multiply())


@app.task(bind=True)
def progress(self, steps, gate):
    """Reports each step, then waits for the test to open the gate of the next one."""
    for step in range(1, steps + 1):
        self.update_state(state="PROGRESS", meta={"current": step, "total": steps})
        deadline = time.monotonic() + 30
        while not os.path.exists(f"{gate}.{step}") and time.monotonic() < deadline:
            time.sleep(0.01)
    return "done"


@app.task
def ignored():
    raise Ignore()


@app.task(bind=True)
def reject_once(self):
    if not self.request.delivery_info["redelivered"]:
        raise Reject("not now", requeue=True)
    return "second delivery"


@app.task
def fan_out(n):
    for i in range(n):
        add.delay(i, i)
    return n
