"""celeriac and Celery on the same Redis, in one run, with the ratio of each figure.

    python bench/redis_bench.py [--url redis://localhost:6379/15] [--tasks 10000]
                                [--roundtrips 500] [--no-workers]

The databases in ``--url`` and ``--backend-url`` (default: the next lower
number) are FLUSHED: give ones nobody else uses.
Needs the bench extra (``pip install -e '.[bench,redis]'``: Celery is only a
benchmark dependency). Measures:

a. the raw limit: a plain redis-py loop of single LPUSH, then one of single
   RPOP, of a payload the size of a celeriac task message (a to c run in
   interleaved blocks of 250 calls, so that all three see the same machine
   load: on a busy machine single figures wander, their ratios much less);
b. celeriac enqueue rate, one ``delay()`` at a time;
c. Celery's enqueue rate the same way (JSON serializer, same Redis);
d. celeriac batch publish rate (``app.publish`` of 1,000 messages at a time);
e. Redis memory per queued task: MEMORY USAGE of every key of the broker's
   database after 10,000 queued ``delay()`` calls, for both (INFO's
   used_memory would count whatever else the server holds meanwhile);
g. eight producer threads in one process (a web server's), each calling
   ``delay()`` one at a time, for both, and a plain redis-py loop on eight
   threads sharing one client: the total enqueue rate, and its ratio to one
   thread's (part b);
f. with one worker each (``-P prefork -c 2``, started here as subprocesses):
   drain rate of a queue of ``--tasks`` tasks (measured from the tasks' own
   completion times, so worker start-up does not count) and the
   ``delay().get()`` round trip, p50 and p99.

Both apps store results in the same Redis (another database) and send no
task-sent events (Celery's default). celeriac's ``delay()`` does not touch
the result backend; Celery's subscribes to the task's result channel.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    Table,
    celery_drain,
    compare_workers,
    rate,
    timed,
)

TASKS = """
import os, time
from celeriac import Celeriac

app = Celeriac("bench", broker=os.environ["BENCH_BROKER"], backend=os.environ["BENCH_BACKEND"],
               task_send_sent_event=False, worker_send_task_events=False)

@app.task
def stamp():
    return time.time()
"""

CELERY_TASKS = """
import os, time
from celery import Celery

app = Celery("cbench", broker=os.environ["BENCH_BROKER"], backend=os.environ["BENCH_BACKEND"])
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)

@app.task
def stamp():
    return time.time()
"""


class Bench:
    def __init__(self, url: str, backend_url: str | None, tasks: int, roundtrips: int) -> None:
        self.url, self.tasks, self.roundtrips = url, tasks, roundtrips
        self.raw = redis.Redis.from_url(url)
        db = int(self.raw.connection_pool.connection_kwargs.get("db", 0))
        self.backend_url = backend_url or url.rsplit("/", 1)[0] + f"/{(db - 1) % 16}"
        self.raw_backend = redis.Redis.from_url(self.backend_url)
        self.table = Table()
        self.workdir = Path(tempfile.mkdtemp(prefix="celeriac-redis-bench-"))
        (self.workdir / "benchtasks.py").write_text(TASKS)
        (self.workdir / "celerytasks.py").write_text(CELERY_TASKS)
        os.environ.update(BENCH_BROKER=url, BENCH_BACKEND=self.backend_url)
        sys.path.insert(0, str(self.workdir))
        import benchtasks
        import celerytasks

        self.app, self.stamp = benchtasks.app, benchtasks.stamp
        self.capp, self.cstamp = celerytasks.app, celerytasks.stamp

    def flush(self) -> None:
        self.raw.flushdb()
        self.raw_backend.flushdb()
        self.app.broker._registered.clear()  # type: ignore[attr-defined]

    # -- a, b, c, e: one at a time, and memory ------------------------------------------
    def single(self, block: int = 250) -> None:
        """Raw LPUSH, celeriac and Celery enqueue in interleaved blocks of ``block`` calls.

        Interleaving puts the three loops under the same machine load, so
        their ratios hold even when the absolute figures wander.
        """
        payload = self.stamp.build_message((), {}).envelope(self.app.codec).body
        self.stamp.delay()  # connect and load the scripts
        self.cstamp.delay()
        self.flush()
        push, pop, ours, theirs = self.raw.lpush, self.raw.rpop, self.stamp, self.cstamp
        loops: dict[str, Callable[[], Any]] = {
            "push": lambda: [push("raw", payload) for _ in range(block)],
            "pop": lambda: [pop("raw") for _ in range(block)],
            "ours": lambda: [ours.delay() for _ in range(block)],
            "theirs": lambda: [theirs.delay() for _ in range(block)],
        }
        spent = dict.fromkeys(loops, 0.0)
        for _ in range(max(1, self.tasks // block)):
            for name, loop in loops.items():
                spent[name] += timed(loop)
        n = max(1, self.tasks // block) * block
        med = {name: rate(n, seconds) for name, seconds in spent.items()}
        self.table.row(f"a. raw LPUSH loop ({len(payload)} B payload)", med["push"], None, "/s")
        self.table.row("a. raw RPOP loop", med["pop"], None, "/s")
        self.table.row("b/c. enqueue, one delay() at a time", med["ours"], med["theirs"], "/s")
        self.table.row(
            "    celeriac delay() / raw LPUSH loop", 100 * med["ours"] / med["push"], None, "%"
        )
        memory = {}
        for name, task in (("ours", ours), ("theirs", theirs)):
            self.flush()
            for _ in range(10_000):
                task.delay()
            memory[name] = self.memory() / 10_000
        self.flush()
        self.table.row(
            "e. Redis memory per queued task",
            memory["ours"],
            memory["theirs"],
            "B",
            lower_is_better=True,
        )

    def memory(self) -> int:
        """Bytes held by the keys of the broker's database (MEMORY USAGE, every element
        counted): unlike INFO's used_memory, other users of the server do not move it."""
        return sum(int(self.raw.memory_usage(key, samples=0) or 0) for key in self.raw.scan_iter())

    # -- d: batch publish -------------------------------------------------------------
    def batch(self) -> None:
        self.flush()
        n = max(self.tasks, 10_000)
        messages = [self.stamp.build_message((), {}) for _ in range(n)]
        publish = self.app.publish
        seconds = timed(lambda: [publish(messages[i : i + 1000]) for i in range(0, n, 1000)])
        self.table.row("d. batch publish, 1,000 per app.publish", rate(n, seconds), None, "/s")
        self.flush()

    # -- g: eight producer threads -------------------------------------------------------
    def threads(self, count: int = 8) -> None:
        """Every thread sends ``tasks / count``; the rate is all of them over the wall clock."""
        self.flush()
        payload = self.stamp.build_message((), {}).envelope(self.app.codec).body
        per = max(1, self.tasks // count)
        push, ours, theirs = self.raw.lpush, self.stamp.delay, self.cstamp.delay
        loops: dict[str, Callable[[], Any]] = {
            "raw": lambda: [push("raw", payload) for _ in range(per)],
            "ours": lambda: [ours() for _ in range(per)],
            "theirs": lambda: [theirs() for _ in range(per)],
        }
        rates = {}
        for name, loop in loops.items():
            workers = [threading.Thread(target=loop) for _ in range(count)]
            start = time.perf_counter()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            rates[name] = rate(per * count, time.perf_counter() - start)
            self.flush()
        self.table.row(f"g. raw LPUSH loop, {count} threads", rates["raw"], None, "/s")
        self.table.row(
            f"g. enqueue, {count} threads of delay()", rates["ours"], rates["theirs"], "/s"
        )
        single = self.table.figure("b/c")
        self.table.row(
            f"    {count} threads / one thread (b)", 100 * rates["ours"] / single, None, "%"
        )

    # -- f: workers ---------------------------------------------------------------------
    def workers(self) -> None:
        compare_workers(
            self.table,
            "f",
            self.workdir,
            self.flush,
            self.roundtrips,
            (self._celeriac_drain, self.stamp),
            (lambda: celery_drain(self.cstamp, self.tasks), self.cstamp),
        )

    def _celeriac_drain(self) -> float:
        messages = [self.stamp.build_message((), {}) for _ in range(self.tasks)]
        for i in range(0, len(messages), 1000):
            self.app.publish(messages[i : i + 1000])
        backend = self.app.backend
        backend.wait(messages[-1].id, timeout=300)
        ids = [m.id for m in messages]
        done: list[float] = []
        while len(done) < len(ids):
            found = backend.get_many(ids)
            done = [meta.result for meta in found.values() if meta.ready]
            if len(done) < len(ids):
                time.sleep(0.05)
        return rate(len(done) - 1, max(done) - min(done))

    def report(self) -> None:
        self.table.print(f"celeriac vs Celery on {self.url} (results in {self.backend_url})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="redis://localhost:6379/15")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--roundtrips", type=int, default=500)
    parser.add_argument(
        "--backend-url", default=None, help="results (default: the next lower database of --url)"
    )
    parser.add_argument("--no-workers", action="store_true", help="skip part f")
    opts = parser.parse_args()
    bench = Bench(opts.url, opts.backend_url, opts.tasks, opts.roundtrips)
    bench.single()
    bench.batch()
    bench.threads()
    if not opts.no_workers:
        bench.workers()
    bench.flush()
    bench.report()


if __name__ == "__main__":
    main()
