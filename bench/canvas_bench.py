"""Workflows end to end: a 1,000-task group and a 1,000-task chord, celeriac and Celery.

    python bench/canvas_bench.py [--url redis://127.0.0.1:6379/14] [--size 1000] [--runs 3]
    python bench/canvas_bench.py --sqlite          # celeriac alone, on the embedded broker

Without ``--url`` a private ``redis-server`` is started on a free port (nothing
shared is touched); with ``--url`` that database and the next one (results)
are FLUSHED: give ones nobody else uses. One worker each, ``-P prefork -c 2``,
started here as a subprocess, on the same Redis, JSON everywhere, no events.

Each figure is the median of ``--runs`` runs, from the ``apply_async()`` call to
the last result read by ``get()``:

* group: ``group(add.s(i, i) for i in range(size)).apply_async().get()``; also
  the time ``apply_async()`` alone takes (celeriac sends the group in one batch);
* chord: ``chord(add.s(i, i) ..., tsum.s()).apply_async().get()``.

Needs the bench and redis extras (``pip install -e '.[bench,redis]'``; Celery
is only a benchmark dependency). ``--sqlite`` needs neither.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import timed, worker_command, worker_process

CELERIAC_TASKS = """
import os
from celeriac import Celeriac

app = Celeriac("cbench", broker=os.environ["BENCH_BROKER"], backend=os.environ["BENCH_BACKEND"],
               task_send_sent_event=False, worker_send_task_events=False)

@app.task
def add(a, b):
    return a + b

@app.task
def tsum(numbers):
    return sum(numbers)
"""

CELERY_TASKS = """
import os
from celery import Celery

app = Celery("celerybench", broker=os.environ["BENCH_BROKER"],
             backend=os.environ["BENCH_BACKEND"])
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)

@app.task
def add(a, b):
    return a + b

@app.task
def tsum(numbers):
    return sum(numbers)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    """A redis-server of our own on a free port, killed afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not on PATH: install Redis, or pass --url or --sqlite")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


def measure(module: Any, size: int, runs: int) -> dict[str, float]:
    """Median seconds: group send, group end to end, chord end to end."""
    group, chord = module.group, module.chord
    add, tsum = module.tasks.add, module.tasks.tsum
    group([add.s(1, 1)] * 10).apply_async().get(timeout=60)  # warm up connections and workers
    sends, groups, chords = [], [], []
    expected = [i + i for i in range(size)]
    for _ in range(runs):
        sig = group(add.s(i, i) for i in range(size))
        start = time.perf_counter()
        result = sig.apply_async()
        sends.append(time.perf_counter() - start)
        assert result.get(timeout=300) == expected
        groups.append(time.perf_counter() - start)
        sig = chord([add.s(i, i) for i in range(size)], tsum.s())
        chords.append(timed(lambda s=sig: _check(s.apply_async().get(timeout=300), sum(expected))))
    return {
        "group send": statistics.median(sends),
        "group end to end": statistics.median(groups),
        "chord end to end": statistics.median(chords),
    }


def _check(value: Any, expected: Any) -> None:
    assert value == expected, f"got {value!r}, expected {expected!r}"


class _Side:
    """One system's canvas names and tasks, imported from the work directory."""

    def __init__(self, group: Any, chord: Any, tasks: Any) -> None:
        self.group, self.chord, self.tasks = group, chord, tasks


def run(url: str | None, size: int, runs: int, sqlite: bool) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="celeriac-canvas-bench-"))
    (workdir / "cbench.py").write_text(CELERIAC_TASKS)
    (workdir / "celerybench.py").write_text(CELERY_TASKS)
    sys.path.insert(0, str(workdir))
    rows: dict[str, dict[str, float]] = {}
    if sqlite:
        where = f"sqlite:///{workdir}/bench.sqlite3"
        rows["celeriac"] = _celeriac(where, where, workdir, size, runs)
        return _report(f"celeriac ALONE on SQLite ({where}); no Celery figures", rows, size)
    with private_redis(workdir) if url is None else _given(url) as broker:
        backend = _next_db(broker)
        _flush(broker, backend)
        rows["celeriac"] = _celeriac(broker, backend, workdir, size, runs)
        _flush(broker, backend)
        rows["Celery"] = _celery(broker, backend, workdir, size, runs)
        _flush(broker, backend)
    _report(f"celeriac vs Celery on Redis {broker} (results in {backend})", rows, size)


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


def _next_db(url: str) -> str:
    base, _, db = url.rpartition("/")
    return f"{base}/{(int(db or 0) + 1) % 16}"


def _flush(*urls: str) -> None:
    import redis

    for url in urls:
        redis.Redis.from_url(url).flushdb()


def _celeriac(broker: str, backend: str, workdir: Path, size: int, runs: int) -> dict[str, float]:
    os.environ.update(BENCH_BROKER=broker, BENCH_BACKEND=backend)
    import cbench

    import celeriac

    env = {"BENCH_BROKER": broker, "BENCH_BACKEND": backend}
    with worker_process("celeriac", worker_command("celeriac", "cbench"), workdir, env):
        return measure(_Side(celeriac.group, celeriac.chord, cbench), size, runs)


def _celery(broker: str, backend: str, workdir: Path, size: int, runs: int) -> dict[str, float]:
    try:
        import celery
    except ImportError:
        sys.exit("Celery is not installed: pip install -e '.[bench,redis]'")
    os.environ.update(BENCH_BROKER=broker, BENCH_BACKEND=backend)
    import celerybench

    env = {"BENCH_BROKER": broker, "BENCH_BACKEND": backend}
    with worker_process("celery", worker_command("celery", "celerybench"), workdir, env):
        return measure(_Side(celery.group, celery.chord, celerybench), size, runs)


def _report(title: str, rows: dict[str, dict[str, float]], size: int) -> None:
    print(f"\n{title}; {size} tasks each, {os.cpu_count()} cores, median seconds")
    names = list(rows)
    print(
        f"  {'':<18}"
        + "".join(f"{n:>12}" for n in names)
        + ("       ratio" if len(names) == 2 else "")
    )
    for figure in next(iter(rows.values())):
        values = [rows[n][figure] for n in names]
        line = f"  {figure:<18}" + "".join(f"{v:>11.3f}s" for v in values)
        if len(values) == 2:
            line += f"  {values[1] / values[0]:>9.1f}x"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a Redis database to FLUSH and use (default: private)")
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sqlite", action="store_true", help="celeriac alone, on SQLite")
    opts = parser.parse_args()
    run(opts.url, opts.size, opts.runs, opts.sqlite)


if __name__ == "__main__":
    main()
