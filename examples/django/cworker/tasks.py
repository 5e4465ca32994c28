"""Tasks that need nothing from Django: the standalone worker (celeryworker/) runs them too.

``shared_task`` belongs to whichever app is current: the project's app under
Django, the standalone worker's app in celeryworker/.
"""

import time

from celeriac import shared_task


# Routing: CELERY_TASK_ROUTES sends task1 to queue1 and task2 to queue2.
@shared_task
def task1() -> str:
    return "task1 ran"


@shared_task
def task2() -> str:
    return "task2 ran"


# Results: the return value is stored in the Django database (django-db://).
@shared_task
def t1(a: int, b: int, message: str | None = None) -> str | int:
    value = a + b
    return f"{message} {value}" if message else value


# Canvas: groups, chains and chords.
@shared_task
def add(x: int, y: int) -> int:
    return x + y


@shared_task
def mul(x: int, y: int) -> int:
    return x * y


@shared_task
def tsum(numbers: list[int]) -> int:
    return sum(numbers)


@shared_task
def tp1() -> str:
    time.sleep(0.1)
    return "tp1"


@shared_task
def tp2() -> str:
    time.sleep(0.1)
    return "tp2"


@shared_task
def tp3() -> str:
    time.sleep(0.1)
    return "tp3"


@shared_task
def tp4() -> str:
    time.sleep(0.1)
    return "tp4"


# Rate limits hold for the whole cluster, however many workers run this task.
@shared_task(rate_limit="10/m")
def limited(n: int) -> float:
    return time.time()
