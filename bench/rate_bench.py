"""What a cluster-wide rate-limit reservation costs (``broker.rates.reserve``), on any broker.

    python bench/rate_bench.py --broker amqp://guest:guest@localhost:5672//
                               [--reservations 2000] [--processes 4]

Part a: one connection reserves slots of one limit one after another; prints the
latency per reservation (median, p99). Part b: ``--processes`` processes, each
with its own connection, reserve slots of one shared limit at once (they
contend for it: on RabbitMQ, for its token); prints reservations per second in
total and each one's median latency. Every run uses fresh limit keys.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
import uuid
from typing import Any

from celeriac.brokers import connect_broker
from celeriac.brokers.capabilities import RateLimits, require
from celeriac.config import Settings
from celeriac.urls import redact

INTERVAL = 1e-6  # the slots themselves do not matter here, only the reservations


def _rates(broker: Any) -> RateLimits:
    return require(broker, broker.rates, "rates", "the rate-limit bench")


def _latencies(url: str, key: str, count: int) -> list[float]:
    broker = connect_broker(url, Settings())
    rates = _rates(broker)
    rates.reserve(f"{key}:warm", INTERVAL)  # connected, queue declared
    spent = []
    for _ in range(count):
        start = time.perf_counter()
        rates.reserve(key, INTERVAL)
        spent.append(time.perf_counter() - start)
    broker.close()
    return spent


def _contend(url: str, key: str, count: int, go: Any, out: Any) -> None:
    broker = connect_broker(url, Settings())
    rates = _rates(broker)
    rates.reserve(f"{key}:warm:{uuid.uuid4().hex}", INTERVAL)
    go.wait(60)
    spent = []
    for _ in range(count):
        start = time.perf_counter()
        rates.reserve(key, INTERVAL)
        spent.append(time.perf_counter() - start)
    out.put(spent)
    broker.close()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--reservations", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=4)
    opts = parser.parse_args()
    print(f"rates.reserve on {redact(opts.broker)}")

    spent = sorted(_latencies(opts.broker, f"bench:{uuid.uuid4().hex}", opts.reservations))
    p99 = spent[int(len(spent) * 0.99) - 1]
    print(
        f"  a) one connection, {len(spent)} reservations: median {_ms(statistics.median(spent))},"
        f" p99 {_ms(p99)}, {len(spent) / sum(spent):,.0f}/s"
    )

    spawn = multiprocessing.get_context("spawn")
    go, out = spawn.Event(), spawn.Queue()
    key, each = f"bench:{uuid.uuid4().hex}", max(1, opts.reservations // opts.processes)
    workers = [
        spawn.Process(target=_contend, args=(opts.broker, key, each, go, out))
        for _ in range(opts.processes)
    ]
    for worker in workers:
        worker.start()
    time.sleep(2.0)  # let every process connect before the start
    start = time.perf_counter()
    go.set()
    results = [out.get(timeout=600) for _ in workers]
    elapsed = time.perf_counter() - start
    for worker in workers:
        worker.join(30)
    medians = [statistics.median(r) for r in results]
    total = sum(len(r) for r in results)
    print(
        f"  b) {opts.processes} processes on one limit, {total} reservations: "
        f"{total / elapsed:,.0f}/s in total, median latency per process "
        f"{', '.join(_ms(m) for m in medians)}"
    )


if __name__ == "__main__":
    main()
