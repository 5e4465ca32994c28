"""The app real workers run in the dashboard's workflow tests (copied into each test's folder)."""

import os
from pathlib import Path

from celeriac import Celeriac

app = Celeriac("dash", broker=os.environ["CELERIAC_BROKER_URL"])


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task
def tsum(values: list[int]) -> int:
    return sum(values)


@app.task
def needs_file(path: str, n: int) -> int:
    """Fails until the file ``path`` exists: fixed by creating it, then retried."""
    if not Path(path).exists():
        raise FileNotFoundError(path)
    return n
