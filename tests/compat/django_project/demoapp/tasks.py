"""Celery's "First steps with Django" demoapp/tasks.py (without the model), only the
import changed."""

from celeriac import shared_task


@shared_task
def add(x, y):
    return x + y


@shared_task
def mul(x, y):
    return x * y


@shared_task
def xsum(numbers):
    return sum(numbers)
