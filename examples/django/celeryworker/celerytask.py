"""A worker outside Django: ``PYTHONPATH=.. celeriac -A celerytask worker -Q standalone``.

It runs the Django project's plain tasks (cworker/tasks.py imports nothing from
Django), which the project sends by name:
``app.send_task("cworker.tasks.t1", args=[2, 3], queue="standalone")``.
"""

from celeriac import Celeriac

app = Celeriac("celerytask")
app.config_from_object("celeryconfig")
app.conf.imports = ("cworker.tasks",)
