"""Raw figures of the embedded SQLite broker's primitives, on a temporary file.

    python bench/sqlite_broker.py [--messages 20000] [--batch 100]

Prints messages per second for: publishing one message per call, publishing
in batches, and fetch + ack with batches of 1 and 8 (one consumer, as a worker
child with ``--prefetch-multiplier 1`` or 8 would do it), then the same fetch +
ack with two consumer processes on one file.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

from celeriac.message import Envelope
from celeriac.sqlite.broker import SQLiteBroker

QUEUE = "bench"
BODY = b'{"v":1,"id":"x","task":"bench.noop","args":[],"kwargs":{},"queue":"bench"}' + b" " * 200


def envelopes(count: int) -> list[Envelope]:
    return [Envelope(uuid.uuid4().hex, QUEUE, i % 10, BODY) for i in range(count)]


def timed(action: Callable[[], int]) -> tuple[int, float]:
    start = time.perf_counter()
    count = action()
    return count, time.perf_counter() - start


def publish_one_at_a_time(broker: SQLiteBroker, count: int) -> int:
    for env in envelopes(count):
        broker.publish([env])
    return count


def publish_batched(broker: SQLiteBroker, count: int, batch: int) -> int:
    items = envelopes(count)
    for i in range(0, count, batch):
        broker.publish(items[i : i + batch])
    return count


def fetch_and_ack(url: str, limit: int, consumer: str = "c1") -> int:
    broker = SQLiteBroker(url)
    done = 0
    while batch := broker.fetch([QUEUE], consumer, limit, 0.0):
        broker.ack(consumer, [d.tag for d in batch])
        done += len(batch)
    broker.close()
    return done


def _consume_in_child(url: str, limit: int, consumer: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(fetch_and_ack(url, limit, consumer))


def fetch_and_ack_processes(url: str, limit: int, processes: int) -> int:
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [
        ctx.Process(target=_consume_in_child, args=(url, limit, f"p{i}", out))
        for i in range(processes)
    ]
    for proc in procs:
        proc.start()
    total = sum(int(out.get(timeout=600)) for _ in procs)
    for proc in procs:
        proc.join()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=100)
    opts = parser.parse_args()
    n = opts.messages
    url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='celeriac-bench-')) / 'broker.sqlite3'}"
    broker = SQLiteBroker(url)
    broker.purge(QUEUE)  # creates the tables before the clock starts
    rows: list[tuple[str, int, float]] = []

    rows.append(("publish, 1 message per call", *timed(lambda: publish_one_at_a_time(broker, n))))
    broker.purge(QUEUE)
    label = f"publish, batches of {opts.batch}"
    rows.append((label, *timed(lambda: publish_batched(broker, n, opts.batch))))
    for limit in (1, 8):
        if limit == 8:  # the batch-1 run drained what the batched publish stored
            publish_batched(broker, n, opts.batch)
        drain = partial(fetch_and_ack, url, limit)
        rows.append((f"fetch + ack, batch {limit}", *timed(drain)))
    for limit in (1, 8):
        publish_batched(broker, n, opts.batch)
        drain = partial(fetch_and_ack_processes, url, limit, 2)
        rows.append((f"fetch + ack, batch {limit}, 2 processes", *timed(drain)))

    width = max(len(label) for label, _, _ in rows)
    print(f"SQLite broker, {n:,} messages of {len(BODY)} bytes, file {url}")
    print(f"{'operation':<{width}}  {'messages/s':>12}  {'us/message':>10}")
    for label, count, elapsed in rows:
        print(f"{label:<{width}}  {count / elapsed:>12,.0f}  {elapsed / count * 1e6:>10.1f}")
    broker.close()


if __name__ == "__main__":
    main()
