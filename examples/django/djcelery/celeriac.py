"""The celeriac app of the project: ``celeriac -A djcelery worker`` finds it here.

Settings come from Django's settings, every name prefixed ``CELERY_``
(``CELERY_BROKER_URL``, ``CELERY_TASK_ROUTES``, ...), so a Celery project's
settings read the same. Tasks are found in the ``tasks.py`` of every installed
app once Django has loaded its apps.
"""

import os
import time

from celeriac import Celeriac

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djcelery.settings")

app = Celeriac("djcelery")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Priority demo, on their own queue "tasks" served by one worker slot: send
# them together while the slot is busy and they run 9, then 6, then 5.
# celeriac's priorities are 0 (lowest) to 9 (highest), on every broker.
@app.task(queue="tasks", priority=6)
def t1() -> str:
    time.sleep(0.5)
    return "t1 (priority 6)"


@app.task(queue="tasks", priority=5)
def t2() -> str:
    time.sleep(0.5)
    return "t2 (priority 5)"


@app.task(queue="tasks", priority=9)
def t3() -> str:
    time.sleep(0.5)
    return "t3 (priority 9)"
