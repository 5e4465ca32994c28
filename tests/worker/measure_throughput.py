"""No-op tasks through the SQLite broker and one real worker: how many per second.

    .venv/bin/python -m tests.worker.measure_throughput [--tasks 20000] [-P prefork] [-c 2]
        [--prefetch-multiplier 4] [--broker redis://localhost:6379/15]

Publishes the tasks in one batch while the worker is idle and ready, then times
until every result is stored. Prints tasks/s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from celeriac.task import Task
from tests.e2e.workers import launch, wait_until
from tests.worker.fixtures import APP, make_sandbox


def _noop() -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("-P", "--pool", default="prefork")
    parser.add_argument("-c", "--concurrency", default="2")
    parser.add_argument("--prefetch-multiplier", default="4")
    parser.add_argument("--broker", help="broker and backend URL (default: a new SQLite file)")
    opts = parser.parse_args()
    box = make_sandbox(Path(tempfile.mkdtemp(prefix="celeriac-throughput-")), lease=30)
    if opts.broker:
        box.env.update(CELERIAC_BROKER_URL=opts.broker, CELERIAC_RESULT_BACKEND=opts.broker)
        box.app.conf.update(broker_url=opts.broker, result_backend=opts.broker)
    worker = launch(
        APP,
        "-P",
        opts.pool,
        "-c",
        opts.concurrency,
        "-l",
        "WARNING",
        "--prefetch-multiplier",
        opts.prefetch_multiplier,
        cwd=box.dir,
        env=box.env,
    )
    try:
        box.send("noop").get(timeout=30)  # warm up before timing
        noop: Task[..., None] = Task(box.app, _noop, name=f"{APP}.noop", typing=False)
        batch = [noop.build_message((), {}) for _ in range(opts.tasks)]
        start = time.perf_counter()
        box.app.publish(batch)
        published = time.perf_counter() - start
        backend = box.app.backend
        wait_until(lambda: backend.get(batch[-1].id).ready, 600, "the last task", 0.05)
        wait_until(
            lambda: len(backend.get_many([m.id for m in batch])) == len(batch), 60, "every result"
        )
        elapsed = time.perf_counter() - start
    finally:
        worker.stop(60)
    print(
        f"{opts.tasks} no-op tasks, {opts.pool} -c {opts.concurrency}, prefetch multiplier "
        f"{opts.prefetch_multiplier}: published in {published:.2f}s, all results stored in "
        f"{elapsed:.2f}s: {opts.tasks / elapsed:,.0f} tasks/s"
    )


if __name__ == "__main__":
    main()
