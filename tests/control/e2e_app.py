"""The app real workers run in the end-to-end tests (copied into each test's directory)."""

import os
import time

from celeriac import Celeriac

app = Celeriac("e2e", broker=os.environ["CELERIAC_BROKER_URL"])


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.task
def boom() -> None:
    raise ValueError("boom")


@app.task(bind=True, max_retries=2)
def flaky(self) -> str:  # type: ignore[no-untyped-def]
    if self.request.retries == 0:
        raise self.retry(exc=OSError("first attempt fails"), countdown=0.1)
    return "ok"


@app.task(bind=True, max_retries=1)
def retry_later(self) -> str:  # type: ignore[no-untyped-def]
    """Asks to be retried in ten minutes (a waiting retry, for the dashboard's tests)."""
    if self.request.retries == 0:
        raise self.retry(exc=OSError("not yet"), countdown=600)
    return "ok"


@app.task
def limits(name: str) -> list[object]:
    """The limits this worker process sees for task ``name`` (remote control changes them)."""
    task = app.tasks[name]
    return [task.rate_limit, task.soft_time_limit, task.time_limit]


@app.task
async def nap(seconds: float) -> float:
    import asyncio

    await asyncio.sleep(seconds)
    return seconds


@app.task
def hold(gate: str, *extra: object, timeout: float = 60.0, **kwargs: object) -> str:
    """Run until the file ``gate`` exists (the test creates it), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} was never opened")
        time.sleep(0.01)
    return "released"
