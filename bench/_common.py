"""What the benchmarks share: timing, worker processes, the celeriac-vs-Celery table."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def latencies_ms(once: Callable[[], Any], count: int, warm_up: int = 20) -> list[float]:
    """``count`` timed calls of ``once`` in milliseconds, sorted, after ``warm_up`` untimed."""
    for _ in range(warm_up):
        once()
    found = []
    for _ in range(count):
        start = time.perf_counter()
        once()
        found.append((time.perf_counter() - start) * 1000)
    return sorted(found)


def round_trip_ms(task: Any, count: int) -> list[float]:
    """Sorted ``task.delay().get()`` times in milliseconds (celeriac or Celery alike)."""
    return latencies_ms(lambda: task.delay().get(timeout=10), count)


def p50_p99(sorted_values: list[float]) -> tuple[float, float]:
    p99 = sorted_values[max(0, int(len(sorted_values) * 0.99) - 1)]
    return statistics.median(sorted_values), p99


def worker_command(kind: str, app_module: str, concurrency: int = 2, *more: str) -> list[str]:
    """``celeriac`` or ``celery`` ``-A app_module worker -P prefork -c N [more]``."""
    level = "warning" if kind == "celeriac" else "info"  # Celery says "ready" at INFO
    return [
        sys.executable, "-m", kind, "-A", app_module, "worker",
        "-P", "prefork", "-c", str(concurrency), "-l", level, *more,
    ]  # fmt: skip


def import_path(workdir: Path) -> str:
    """The worker's import path: its app's folder, then the caller's PYTHONPATH (so a
    checkout run with ``PYTHONPATH=<checkout>`` measures that checkout's workers too)."""
    return os.pathsep.join(filter(None, [str(workdir), os.environ.get("PYTHONPATH")]))


@contextmanager
def worker_process(
    name: str, command: list[str], workdir: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker subprocess, from the moment it logs "ready" until SIGTERM."""
    log = workdir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, **(env or {}), "PYTHONPATH": import_path(workdir)},
        )
    try:
        deadline = time.monotonic() + 60
        while "ready" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} worker did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def compare_workers(
    table: Table,
    part: str,
    workdir: Path,
    reset: Callable[[], None],
    round_trips: int,
    ours: tuple[Callable[[], float], Any],
    theirs: tuple[Callable[[], float], Any],
) -> None:
    """One prefork -c 2 worker of each in turn (``benchtasks`` for celeriac, ``celerytasks``
    for Celery, each with a ``stamp`` task): the drain rate (each side's ``drain`` returns
    it), then ``delay().get()`` round trips; three rows of ``table``, labelled ``part``."""
    figures = []
    for kind, app_module, (drain, stamp) in (
        ("celeriac", "benchtasks", ours),
        ("celery", "celerytasks", theirs),
    ):
        reset()
        with worker_process(kind, worker_command(kind, app_module), workdir):
            drained = drain()
            p50, p99 = p50_p99(round_trip_ms(stamp, round_trips))
        figures.append((drained, p50, p99))
    (our_rate, our_p50, our_p99), (their_rate, their_p50, their_p99) = figures
    table.row(f"{part}. drain, prefork -c 2", our_rate, their_rate, "/s")
    table.row(f"{part}. round trip delay().get() p50", our_p50, their_p50, "ms", True)
    table.row(f"{part}. round trip delay().get() p99", our_p99, their_p99, "ms", True)


def celery_drain(stamp: Any, tasks: int) -> float:
    """Send ``tasks`` Celery stamps one by one; the rate between the first and last finish."""
    results = [stamp.delay() for _ in range(tasks)]
    done = [r.get(timeout=600) for r in results]
    return rate(len(done) - 1, max(done) - min(done))


class Table:
    """Rows of celeriac's figure, Celery's, and their ratio."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def row(
        self,
        name: str,
        ours: float | None,
        celery: float | None,
        unit: str,
        lower_is_better: bool = False,
    ) -> None:
        def show(v: float | None) -> str:
            if v is None:
                return "-"
            return (f"{v:,.0f}" if v >= 100 else f"{v:.3g}") + f" {unit}"

        ratio = ""
        if ours and celery:
            value = celery / ours if lower_is_better else ours / celery
            ratio = f"{value:.2f}x" if value < 10 else f"{value:.1f}x"
        self.rows.append((name, show(ours), show(celery), ratio))

    def figure(self, name_part: str) -> float:
        """celeriac's figure in the first row whose name contains ``name_part``."""
        text = next(r[1] for r in self.rows if name_part in r[0])
        return float(text.split()[0].replace(",", ""))

    def print(self, title: str) -> None:
        print(f"\n{title}, {os.cpu_count()} cores")
        header = ("", "celeriac", "Celery", "ratio")
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(4)]
        for r in [header, *self.rows]:
            print(
                f"  {r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  "
                f"{r[3]:>{widths[3]}}"
            )
