"""The example's scenarios, shared by ``manage.py scenarios`` and the page at ``/``.

Each scenario sends work to the workers, waits for the outcome (``timeout``
seconds at most), reports what happened through ``say``, and raises when the
outcome is not what celeriac promises.
"""

import itertools
import time
from collections.abc import Callable

from django.db import transaction
from djcelery.celeriac import t1 as p6
from djcelery.celeriac import t2 as p5
from djcelery.celeriac import t3 as p9

from celeriac import Celeriac, chain, chord, group
from celeriac.contrib.django.models import TaskResult

from . import tasks
from .dbtasks import welcome, word_count
from .models import Signup

Say = Callable[[str], None]


class ScenarioFailed(Exception):
    """The outcome differs from what was expected."""


def _row(task_id: str) -> TaskResult:
    return TaskResult.objects.get(pk=task_id)


def routing(say: Say, timeout: float) -> None:
    """task1 and task2 are routed by CELERY_TASK_ROUTES to queue1 and queue2."""
    for task, queue in ((tasks.task1, "queue1"), (tasks.task2, "queue2")):
        result = task.delay()
        value = result.get(timeout=timeout)
        row = _row(result.id)
        say(f"{task.name} -> {value!r}, from queue {row.queue}, run by {row.worker}")
        if row.queue != queue:
            raise ScenarioFailed(f"{task.name} went to {row.queue}, not {queue}")


def results(say: Say, timeout: float) -> None:
    """A result, read back with get() and stored in the Django database."""
    result = tasks.t1.delay(5, 10, message="The sum is")
    value = result.get(timeout=timeout)
    say(f"t1(5, 10, message='The sum is') = {value!r}")
    say(f"stored: {_row(result.id).state}, see /admin/celeriac/taskresult/{result.id}/change/")
    if value != "The sum is 15":
        raise ScenarioFailed(f"expected 'The sum is 15', got {value!r}")


def priority(say: Say, timeout: float) -> None:
    """One slot on queue "tasks": whatever waits runs highest priority first (9, 6, 5)."""
    sent = [p5.delay(), p6.delay(), p5.delay(), p9.delay()]
    for result in sent:
        result.get(timeout=timeout)
    rows = sorted((_row(r.id) for r in sent), key=lambda row: row.date_done)
    order = [row.name.rsplit(".", 1)[-1] for row in rows]
    say(f"sent t2(5), t1(6), t2(5), t3(9); ran {', '.join(order)}")
    priorities = {"t1": 6, "t2": 5, "t3": 9}
    waited = [priorities[name] for name in order[1:]]  # the first may start before the rest arrive
    if waited != sorted(waited, reverse=True):
        raise ScenarioFailed(f"waiting tasks did not run highest priority first: {order}")


def canvas_group(say: Say, timeout: float) -> None:
    values = group(tasks.tp1.s(), tasks.tp2.s(), tasks.tp3.s(), tasks.tp4.s()).apply_async()
    got = values.get(timeout=timeout)
    say(f"group(tp1, tp2, tp3, tp4) = {got}")
    if got != ["tp1", "tp2", "tp3", "tp4"]:
        raise ScenarioFailed(f"unexpected group result {got}")


def canvas_chain(say: Say, timeout: float) -> None:
    got = chain(tasks.add.s(1, 2), tasks.mul.s(3)).apply_async().get(timeout=timeout)
    say(f"chain(add(1, 2), mul(3)) = {got}")
    if got != 9:
        raise ScenarioFailed(f"expected 9, got {got}")


def canvas_chord(say: Say, timeout: float) -> None:
    header = [tasks.add.s(i, i) for i in range(10)]
    got = chord(header, tasks.tsum.s()).apply_async().get(timeout=timeout)
    say(f"chord([add(i, i) for i in 0..9], tsum) = {got} (joined by a counter in the database)")
    if got != 90:
        raise ScenarioFailed(f"expected 90, got {got}")


def rate_limit(say: Say, timeout: float) -> None:
    """limited has rate_limit='10/m': one start every 6 s across the whole cluster."""
    sent = [tasks.limited.delay(n) for n in range(3)]
    times = sorted(r.get(timeout=max(timeout, 20)) for r in sent)
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(times)]
    say(f"3 x limited (10/m) started {gaps} s apart")
    if min(gaps) < 5.5:
        raise ScenarioFailed(f"the rate limit did not hold: gaps {gaps}")


class _Rollback(Exception):
    pass


def on_commit(say: Say, timeout: float) -> None:
    """delay_on_commit sends after the transaction commits, and never on rollback."""
    with transaction.atomic():
        signup = Signup.objects.create(email="ada@example.com")
        committed = welcome.delay_on_commit(signup.id)
    say(f"committed: {committed.get(timeout=timeout)!r}")
    try:
        with transaction.atomic():
            signup = Signup.objects.create(email="bob@example.com")
            rolled_back = welcome.delay_on_commit(signup.id)
            raise _Rollback
    except _Rollback:
        pass
    say(f"rolled back: task {rolled_back.id} was never sent (state {rolled_back.state})")


def tasks_framework(say: Say, timeout: float) -> None:
    """A Django Tasks framework task (priority 50 -> celeriac 7), run by a celeriac worker."""
    result = word_count.enqueue("celeriac runs the tasks Django enqueues")
    deadline = time.monotonic() + timeout
    while not result.is_finished:
        if time.monotonic() > deadline:
            raise ScenarioFailed(f"word_count still {result.status} after {timeout}s")
        time.sleep(0.05)
        result.refresh()
    say(f"word_count.enqueue(...): {result.status}, return_value {result.return_value}")
    if result.return_value != 6:
        raise ScenarioFailed(f"expected 6, got {result.return_value}")


def standalone(say: Say, timeout: float) -> None:
    """The standalone worker (celeryworker/, no Django) takes tasks sent by name."""
    from celeryworker import celeryconfig

    client = Celeriac("standalone-client", set_as_current=False)
    client.config_from_object(celeryconfig)
    result = client.send_task(
        "cworker.tasks.t1", args=[2, 3], kwargs={"message": "standalone:"}, queue="standalone"
    )
    value = result.get(timeout=timeout)
    say(f"send_task('cworker.tasks.t1', queue='standalone') = {value!r}")
    if value != "standalone: 5":
        raise ScenarioFailed(f"expected 'standalone: 5', got {value!r}")


SCENARIOS: dict[str, Callable[[Say, float], None]] = {
    "routing": routing,
    "results": results,
    "priority": priority,
    "group": canvas_group,
    "chain": canvas_chain,
    "chord": canvas_chord,
    "rate_limit": rate_limit,
    "on_commit": on_commit,
    "tasks_framework": tasks_framework,
    "standalone": standalone,
}
