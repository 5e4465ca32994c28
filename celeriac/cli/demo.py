"""``celeriac demo``: a guided walk through celeriac on the embedded broker.

Starts two workers in the background (one on ``queue1`` with one slot, one on
``queue2``), sends the classic scenarios, prints what ran where and in what
order, stops the workers, and exits 0. No server is needed.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

READY_TIMEOUT = 30.0


def _say(text: str = "") -> None:
    click.echo(text)


def _title(text: str) -> None:
    _say()
    _say(click.style(text, bold=True))


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise click.ClickException(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


@contextmanager
def _workers(workdir: Path, env: dict[str, str]) -> Iterator[list[Path]]:
    """Start the two demo workers; stop them warmly on the way out."""
    specs = [("queue1", "queue1@demo", "1"), ("queue2", "queue2@demo", "2")]
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        for queue, name, concurrency in specs:
            log = workdir / f"{queue}.log"
            logs.append(log)
            with open(log, "wb") as out:
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "celeriac",
                            "-A",
                            "celeriac.demo.tasks",
                            "worker",
                            "-Q",
                            queue,
                            "-n",
                            name,
                            "-c",
                            concurrency,
                            "--prefetch-multiplier",
                            "1",
                            "-l",
                            "INFO",
                        ],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                        cwd=workdir,
                    )
                )
        for proc, log in zip(procs, logs, strict=True):
            _wait_for(
                functools.partial(_ready, proc, log),
                READY_TIMEOUT,
                f"a worker to start (see {log})",
            )
        yield logs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _ready(proc: subprocess.Popen[bytes], log: Path) -> bool:
    if proc.poll() is not None:
        raise click.ClickException(f"a worker exited at start:\n{log.read_text()}")
    return "ready" in log.read_text(errors="replace")


def _scenarios(app: Any, tasks: Any) -> None:
    _title("1. Routing: task1 goes to queue1, task2 to queue2 (task_routes)")
    r1, r2 = tasks.task1.delay(1), tasks.task2.delay(2)
    for r in (r1, r2):
        value = r.get(timeout=20)
        meta = app.backend.get(r.id)
        _say(
            f"   {meta.name.rsplit('.', 1)[-1]:6} ran on {meta.worker:12} "
            f"(queue {meta.queue}) -> {value!r}"
        )

    _title("2. Priorities 9 > 6 > 5 with one slot: sent while the worker is busy")
    blocker = tasks.busy.delay(1.0)
    _wait_for(lambda: blocker.state == "STARTED", 20, "the busy task to start")
    sends = [("t2", tasks.t2, 5), ("t1", tasks.t1, 6), ("t3", tasks.t3, 9)] * 2
    results = []
    for name, task, priority in sends:
        results.append((name, task.apply_async((6, 3)), priority))
    _say("   sent: " + ", ".join(f"{n}({p})" for n, _, p in results))
    blocker.get(timeout=20)
    for _, r, _ in results:
        r.get(timeout=20)
    metas = sorted((app.backend.get(r.id).date_started or 0.0, n, p) for n, r, p in results)
    _say("   ran:  " + ", ".join(f"{n}({p})" for _, n, p in metas))

    _title("3. Arguments, keyword arguments, results")
    r = tasks.t1.delay(5, 10, message="The sum is")
    value = r.get(timeout=20)
    _say(f"   t1.delay(5, 10, message='The sum is') -> {value!r}")
    _say(f"   ready()={r.ready()}  successful()={r.successful()}  state={r.state}")

    _title("4. Synchronous wait, and an asynchronous send that returns at once")
    start = time.perf_counter()
    value = tasks.t2.delay(6, 7).get(timeout=20)
    _say(f"   t2.delay(6, 7).get() -> {value!r} in {(time.perf_counter() - start) * 1000:.1f} ms")
    start = time.perf_counter()
    pending = tasks.t3.apply_async((10, 4), countdown=1)
    _say(
        f"   t3.apply_async(countdown=1) returned id {pending.id} in "
        f"{(time.perf_counter() - start) * 1000:.2f} ms; state now {pending.state}"
    )
    _say(f"   ...a second later: {pending.get(timeout=20)!r}")

    _title("5. A failing task: its error comes back to the caller")
    failing = tasks.divide.delay(1, 0)
    try:
        failing.get(timeout=20)
    except ZeroDivisionError as exc:
        _say(f"   divide(1, 0) raised ZeroDivisionError({exc}) here; state={failing.state}")
        last = (failing.traceback or "").strip().splitlines()[-1:]
        _say(f"   remote traceback ends with: {last[0] if last else '?'}")


@click.command()
@click.option("--keep", is_flag=True, help="keep the demo's directory (database and logs)")
def demo(keep: bool) -> None:
    """Run the guided demo on the embedded SQLite broker: no server needed."""
    workdir = Path(tempfile.mkdtemp(prefix="celeriac-demo-"))
    url = f"sqlite:///{workdir}/demo.sqlite3"
    os.environ["CELERIAC_BROKER_URL"] = url
    env = {**os.environ, "CELERIAC_BROKER_URL": url}
    started = time.monotonic()
    _say(click.style("celeriac demo", bold=True) + f": embedded broker {url}")
    _say("starting two workers: queue1@demo (1 slot), queue2@demo (2 slots) ...")
    # Imported here, not at the top: the demo's app reads CELERIAC_BROKER_URL, set above,
    # when its module is imported.
    from ..demo import tasks

    try:
        with _workers(workdir, env) as logs:
            _scenarios(tasks.app, tasks)
            _title("Stopping the workers (warm shutdown)")
        _say(
            f"\nAll scenarios ran in {time.monotonic() - started:.1f}s. Worker logs: "
            + ", ".join(str(p) for p in logs)
            if keep
            else f"\nAll scenarios ran in {time.monotonic() - started:.1f}s."
        )
    finally:
        tasks.app.close()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
