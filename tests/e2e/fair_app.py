"""The app the fair dispatch tests run in real workers (copied into each test's directory).

Each task appends ``start``/``end`` lines with the wall-clock time and its process id
to a file it is given, so a test sees when and where every execution ran.
"""

import os
import time

from celeriac import Celeriac

app = Celeriac("fair", broker=os.environ["CELERIAC_BROKER_URL"], worker_send_task_events=False)


def note(path: str, *words: object) -> None:
    """Append one line; O_APPEND keeps lines from different processes whole."""
    with open(path, "a") as file:
        file.write(" ".join(str(w) for w in words) + "\n")


@app.task
def record(path: str, label: str, seconds: float = 0.0) -> str:
    note(path, "start", label, time.time(), os.getpid())
    time.sleep(seconds)
    note(path, "end", label, time.time(), os.getpid())
    return label


@app.task(acks_late=False)
def once(path: str, label: str, seconds: float = 0.0) -> str:
    """Acked on receipt: run at most once."""
    note(path, "start", label, time.time(), os.getpid())
    time.sleep(seconds)
    note(path, "end", label, time.time(), os.getpid())
    return label


@app.task(ignore_result=True)
def quiet(path: str, label: str, seconds: float = 0.0) -> None:
    """No result to store: its ack is all a worker sends when it ends."""
    note(path, "start", label, time.time(), os.getpid())
    time.sleep(seconds)
    note(path, "end", label, time.time(), os.getpid())
