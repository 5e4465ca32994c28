"""What waiting tasks cost in Redis: queued and delayed, measured with INFO memory."""

from __future__ import annotations

import time
from dataclasses import replace

from celeriac import Celeriac
from celeriac.message import Envelope
from celeriac.redis.broker import RedisBroker

from .servers import RedisServer

CELERY_BYTES_PER_QUEUED_TASK = 1030  # Celery 5 on Redis, measured by bench/redis_bench.py


def _envelopes(count: int, eta: float | None = None) -> list[Envelope]:
    app = Celeriac("memory", broker="memory://", set_as_current=False)

    @app.task
    def noop() -> None:
        return None

    return [replace(noop.build_message((), {}).envelope(app.codec), eta=eta) for _ in range(count)]


def _bytes_per_message(
    server: RedisServer, broker: RedisBroker, envelopes: list[Envelope]
) -> float:
    broker.publish(envelopes[:1])  # the queue's own keys exist before measuring
    before = server.used_memory()
    for i in range(1, len(envelopes), 1000):
        broker.publish(envelopes[i : i + 1000])
    return (server.used_memory() - before) / (len(envelopes) - 1)


def test_a_queued_task_costs_under_half_of_celerys(
    broker: RedisBroker, redis_server: RedisServer
) -> None:
    envelopes = _envelopes(10_001)
    per_task = _bytes_per_message(redis_server, broker, envelopes)
    body = len(envelopes[0].body)
    print(f"\nqueued: {per_task:.0f} bytes per task ({body}-byte body)")
    assert per_task < CELERY_BYTES_PER_QUEUED_TASK / 2
    assert per_task < body + 100  # the body, its id and a short header


def test_100000_delayed_tasks_cost_little_and_fetches_stay_fast(
    broker: RedisBroker, redis_server: RedisServer
) -> None:
    """Given 100,000 tasks due in an hour, expect a few hundred bytes each in Redis (none in
    any worker), and a fetch of their queue as fast as with none waiting."""
    envelopes = _envelopes(100_001, eta=time.time() + 3600)
    per_task = _bytes_per_message(redis_server, broker, envelopes)
    body = len(envelopes[0].body)
    print(
        f"\ndelayed: {per_task:.0f} bytes per task ({body}-byte body), "
        f"{per_task * 100_000 / 2**20:.1f} MiB for 100,000"
    )
    assert per_task < body + 250  # a sorted-set entry: the message plus about 150 bytes
    assert broker.stats(envelopes[0].queue).delayed == 100_001
    started = time.perf_counter()
    for _ in range(100):
        assert broker.fetch([envelopes[0].queue], "c", 10, 0.0) == []
    assert (time.perf_counter() - started) / 100 < 0.005  # the delayed set is not scanned


def test_a_task_sent_with_delay_costs_under_90_bytes_in_its_queue(
    redis_url: str, redis_server: RedisServer
) -> None:
    """Given no-op tasks sent one delay() at a time (sent_at kept in the entry's header,
    a UUID id as 16 bytes), expect under 90 bytes each in the queue's keys (about 81
    measured; the shared peers benchmark adds its task-sent event, about 34). Counted
    with MEMORY USAGE: used_memory also counts the producer's connection meanwhile."""
    app = Celeriac("memory", broker=redis_url, set_as_current=False, task_send_sent_event=False)

    @app.task(name="bench.noop", ignore_result=True)  # as the peers benchmark's
    def noop() -> None:
        return None

    client = redis_server.client()
    try:
        for _ in range(10_000):
            noop.delay()
        used = sum(int(client.memory_usage(k, samples=0) or 0) for k in client.scan_iter())
    finally:
        app.close()
    print(f"\ndelay(): {used / 10_000:.0f} bytes per queued task")
    assert used / 10_000 < 90
