"""What a page of delayed or waiting messages costs (``broker.browse.messages``).

    python bench/browse_bench.py --broker amqp://guest:guest@localhost:5672/some-vhost
                                 [--delayed 1000 --delayed 10000] [--waiting 500]

``--delayed N``: publishes N messages due in an hour to a fresh queue, times a page of
50 (best and all of three), then deletes them through ``browse.delete``.
``--waiting N``: publishes N waiting messages, times pages of 50 and of N (at most 500)
(on RabbitMQ, about how long a listing holds them), then purges the queue.
"""

from __future__ import annotations

import argparse
import time
import uuid

from celeriac.brokers import connect_broker
from celeriac.config import Settings
from celeriac.message import Envelope
from celeriac.urls import redact


def run(url: str, n: int) -> None:
    broker = connect_broker(url, Settings())
    browse = broker.browse
    assert browse is not None, f"{redact(url)} offers no browse"
    q = f"bench-{uuid.uuid4().hex[:6]}"
    now = time.time()
    for start in range(0, n, 500):
        broker.publish(
            [
                Envelope(f"m{i}", q, 5, b"x" * 200, now + 3600 + i)
                for i in range(start, min(n, start + 500))
            ]
        )
    times = []
    for _ in range(3):
        began = time.perf_counter()
        page = browse.messages(q, "delayed", limit=50)
        times.append(time.perf_counter() - began)
    assert len(page) == 50 and browse.count(q, "delayed") == n
    print(
        f"{n} delayed: a page of 50 in {min(times) * 1000:.0f} ms (best of 3; "
        f"{', '.join(f'{t * 1000:.0f}' for t in times)} ms)"
    )
    browse.delete(q, "delayed", [f"m{i}" for i in range(n)])
    broker.close()


def run_waiting(url: str, n: int) -> None:
    broker = connect_broker(url, Settings())
    browse = broker.browse
    assert browse is not None, f"{redact(url)} offers no browse"
    q = f"bench-{uuid.uuid4().hex[:6]}"
    for start in range(0, n, 500):
        broker.publish(
            [Envelope(f"m{i}", q, 5, b"x" * 200) for i in range(start, min(n, start + 500))]
        )
    for size in sorted({min(50, n), min(n, 500)}):
        times = []
        for _ in range(3):
            began = time.perf_counter()
            page = browse.messages(q, "waiting", limit=size)
            times.append(time.perf_counter() - began)
        assert len(page) == size
        print(
            f"{n} waiting: a page of {size} in {min(times) * 1000:.0f} ms (best of 3; "
            f"{', '.join(f'{t * 1000:.0f}' for t in times)} ms)"
        )
    broker.purge(q)
    broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--delayed", type=int, action="append")
    parser.add_argument("--waiting", type=int, action="append")
    args = parser.parse_args()
    for n in args.delayed or ([] if args.waiting else [1000, 10000]):
        run(args.broker, n)
    for n in args.waiting or []:
        run_waiting(args.broker, n)


if __name__ == "__main__":
    main()
