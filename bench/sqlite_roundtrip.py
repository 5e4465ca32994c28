"""Tasks through the embedded SQLite broker with one real worker.

    python bench/sqlite_roundtrip.py [--tasks 5000] [--roundtrips 300] [--concurrency 2]

Prints: enqueue rate (one delay() at a time, and one batch), drain rate of no-op tasks
through one prefork worker, and the round-trip latency of delay().get().
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import p50_p99, round_trip_ms, worker_command, worker_process

TASKS_MODULE = """
from celeriac import Celeriac
app = Celeriac("bench", worker_send_task_events=False)

@app.task
def noop():
    return None
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--roundtrips", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=2)
    opts = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="celeriac-bench-"))
    (workdir / "benchtasks.py").write_text(TASKS_MODULE)
    url = f"sqlite:///{workdir}/bench.sqlite3"
    sys.path.insert(0, str(workdir))
    import os

    os.environ["CELERIAC_BROKER_URL"] = url
    import benchtasks  # type: ignore[import-not-found]

    app, noop = benchtasks.app, benchtasks.noop
    rows = []

    start = time.perf_counter()
    for _ in range(opts.tasks):
        noop.delay()
    elapsed = time.perf_counter() - start
    rows.append(("enqueue, one delay() at a time", f"{opts.tasks / elapsed:,.0f} tasks/s"))
    app.broker.purge("celeriac")

    messages = [noop.build_message((), {}) for _ in range(opts.tasks)]
    start = time.perf_counter()
    app.publish(messages)
    elapsed = time.perf_counter() - start
    rows.append(("enqueue, one batch", f"{opts.tasks / elapsed:,.0f} tasks/s"))
    app.broker.purge("celeriac")

    command = worker_command("celeriac", "benchtasks", opts.concurrency)
    with worker_process("sqlite", command, workdir, {"CELERIAC_BROKER_URL": url}):
        app.publish(messages)
        start = time.perf_counter()
        last = messages[-1].id
        while True:
            stats = app.broker.stats("celeriac")
            if stats.total_waiting == 0 and stats.in_flight == 0:
                break
            time.sleep(0.005)
        elapsed = time.perf_counter() - start
        app.AsyncResult(last).get(timeout=30)
        rows.append(
            (
                f"drain, one prefork worker -c {opts.concurrency}",
                f"{opts.tasks / elapsed:,.0f} tasks/s",
            )
        )

        p50, p99 = p50_p99(round_trip_ms(noop, opts.roundtrips))
        rows.append(("round trip delay().get() p50", f"{p50:.2f} ms"))
        rows.append(("round trip delay().get() p99", f"{p99:.2f} ms"))

    width = max(len(r[0]) for r in rows)
    print(f"celeriac on SQLite ({url})")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>16}")


if __name__ == "__main__":
    main()
