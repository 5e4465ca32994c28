"""An app run as a script (``python cli_app.py worker``), as Celery allows."""

import sys

from celeriac import Celeriac as Celery

app = Celery("cli_app")


@app.task
def add(x, y):
    return x + y


if __name__ == "__main__":
    if sys.argv[1:2] == ["main"]:
        app.worker_main(["worker", *sys.argv[2:]])
    else:
        app.start()
