"""Celery's "First Steps with Celery" tasks.py, with only the import changed."""

from celeriac import Celeriac as Celery

app = Celery("tasks", backend="rpc://", broker="pyamqp://guest@localhost//")


@app.task
def add(x, y):
    return x + y
