"""A Celery-shaped app that records every signal it receives, for real-worker tests.

Written as a Celery project would be, with only the imports changed. Each
receiver appends ``<signal> <pid> <detail>`` to the file ``$SIGNALS_LOG``.
"""

import os

from celeriac import Celeriac as Celery
from celeriac.signals import (
    after_task_publish,
    before_task_publish,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_revoked,
    task_success,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

app = Celery("signals_app")


def record(name, detail=""):
    line = f"{name} {os.getpid()} {detail}".rstrip() + "\n"
    fd = os.open(os.environ["SIGNALS_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@app.on_after_configure.connect
def configured(sender, **kwargs):
    record("on_after_configure", sender.main)


@app.on_after_finalize.connect
def finalized(sender, **kwargs):
    record("on_after_finalize", sender.main)


@worker_init.connect
def on_worker_init(sender=None, **kwargs):
    record("worker_init")


@worker_ready.connect
def on_worker_ready(sender=None, **kwargs):
    record("worker_ready")


@worker_shutdown.connect
def on_worker_shutdown(sender=None, **kwargs):
    record("worker_shutdown")


@worker_process_init.connect
def on_process_init(**kwargs):
    record("worker_process_init")


@worker_process_shutdown.connect
def on_process_shutdown(**kwargs):
    record("worker_process_shutdown")


@before_task_publish.connect
def on_before_publish(sender=None, headers=None, **kwargs):
    headers["traced"] = "yes"  # as tracing libraries do: it travels with the message


@after_task_publish.connect
def on_after_publish(sender=None, headers=None, **kwargs):
    record("after_task_publish", f"{sender} {headers['id']}")


@task_prerun.connect
def on_prerun(sender=None, task_id=None, task=None, args=None, **kwargs):
    record("task_prerun", f"{task.name} {task_id} {task.request.headers.get('traced')}")


@task_postrun.connect
def on_postrun(sender=None, task_id=None, state=None, retval=None, **kwargs):
    record("task_postrun", f"{sender.name} {task_id} {state}")


@task_success.connect
def on_success(sender=None, result=None, **kwargs):
    record("task_success", f"{sender.name} {sender.request.id} {result}")


@task_failure.connect
def on_failure(sender=None, task_id=None, exception=None, einfo=None, **kwargs):
    assert "ValueError" in str(einfo)
    record("task_failure", f"{sender.name} {task_id} {type(exception).__name__}")


@task_retry.connect(sender="signals_app.flaky")
def on_retry(sender=None, request=None, reason=None, **kwargs):
    record("task_retry", f"{sender.name} {request.id} {type(reason).__name__}")


@task_revoked.connect
def on_revoked(sender=None, request=None, expired=None, **kwargs):
    record("task_revoked", f"{sender.name} {request.id} {expired}")


@app.task
def add(x, y):
    return x + y


@app.task
def fail():
    raise ValueError("boom")


@app.task(bind=True, max_retries=1, default_retry_delay=0)
def flaky(self):
    if self.request.retries == 0:
        raise self.retry(exc=KeyError("once"))
    return "second time"
