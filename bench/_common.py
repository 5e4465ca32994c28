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
            env={**os.environ, **(env or {}), "PYTHONPATH": str(workdir)},
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


def drain_and_round_trips(
    name: str,
    command: list[str],
    workdir: Path,
    drain: Callable[[], float],
    round_trip: Callable[[], Any],
    count: int,
) -> tuple[float, float, float]:
    """With one worker running: the drain rate, then round-trip p50 and p99 (ms)."""
    with worker_process(name, command, workdir):
        drained = drain()
        p50, p99 = p50_p99(latencies_ms(round_trip, count))
    return drained, p50, p99


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
