"""Redis Cluster (three local primaries), Sentinel and TLS: the core cases on each."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import states
from celeriac.backends.base import TaskMeta
from celeriac.redis.backend import RedisBackend
from celeriac.redis.broker import RedisBroker
from celeriac.serialization import Codec
from tests.needs import missing

from .helpers import drain, envelope
from .servers import RedisServer, make_certificate, require_binaries


@pytest.fixture
def cluster_broker(redis_cluster: list[RedisServer]) -> Iterator[RedisBroker]:
    for server in redis_cluster:
        server.client().flushall()
    nodes = ",".join(f"127.0.0.1:{s.port}" for s in redis_cluster)
    broker = RedisBroker(f"redis+cluster://{nodes}", lease_seconds=0.3, max_deliveries=2)
    yield broker
    broker.close()


def _slots(broker: RedisBroker, queues: list[str]) -> set[int]:
    from redis.cluster import key_slot

    return {key_slot(broker.base(q).encode()) for q in queues}


def test_cluster_publish_fetch_ack(cluster_broker: RedisBroker) -> None:
    cluster_broker.publish([envelope(i) for i in range(50)])
    got = drain(cluster_broker, ["q"], expect=50)
    assert [d.id for d in got] == [str(i) for i in range(50)]
    assert cluster_broker.stats("q").in_flight == 0
    assert cluster_broker.queues() == ["q"]


def test_cluster_priority_is_strict_across_queues_on_different_slots(
    cluster_broker: RedisBroker,
) -> None:
    queues = ["alpha", "beta", "gamma"]
    assert len(_slots(cluster_broker, queues)) == 3
    sent = []
    for i in range(30):
        priority = (i * 7) % 10
        cluster_broker.publish([envelope(i, queues[i % 3], priority)])
        sent.append((-priority, i))
    taken = []
    while batch := cluster_broker.fetch(["gamma", "alpha", "beta"], "c", 4, 0):
        taken += batch
    assert [int(d.id) for d in taken] == [i for _, i in sorted(sent)]


def test_cluster_delayed_message_wakes_a_waiting_fetch(cluster_broker: RedisBroker) -> None:
    got: list[object] = []
    started = time.monotonic()
    waiter = threading.Thread(
        target=lambda: got.extend(cluster_broker.fetch(["a", "b"], "c", 1, 10.0))
    )
    waiter.start()
    time.sleep(0.2)
    cluster_broker.publish([envelope(1, "b", eta=time.time() + 0.4)])
    waiter.join(5)
    assert [d.id for d in got] == ["1"]  # type: ignore[attr-defined]
    assert 0.4 <= time.monotonic() - started < 2.5


def test_cluster_a_waiting_fetch_wakes_on_publish(cluster_broker: RedisBroker) -> None:
    got: list[object] = []
    waiter = threading.Thread(
        target=lambda: got.extend(cluster_broker.fetch(["a", "b"], "c", 1, 10.0))
    )
    waiter.start()
    time.sleep(0.2)
    sent = time.monotonic()
    cluster_broker.publish([envelope(1, "a")])
    waiter.join(5)
    assert [d.id for d in got] == ["1"]  # type: ignore[attr-defined]
    assert time.monotonic() - sent < 1.0


def test_cluster_recover_revoke_and_dead_letters(cluster_broker: RedisBroker) -> None:
    cluster_broker.revocations.revoke(["2"], 60)
    cluster_broker.publish([envelope(1), envelope(2, "other")])
    taken = cluster_broker.fetch(["q", "other"], "c", 10, 0)
    assert {d.id: d.revoked for d in taken} == {"1": False, "2": True}
    time.sleep(0.4)  # past the lease
    assert cluster_broker.recover() == 2
    again = cluster_broker.fetch(["q", "other"], "c", 10, 0)
    assert sorted(d.deliveries for d in again) == [2, 2]
    time.sleep(0.4)
    assert cluster_broker.recover() == 2
    assert [d.id for d in cluster_broker.dead_letters("q")] == ["1"]
    assert cluster_broker.requeue_dead("q") == 1
    assert [d.id for d in cluster_broker.fetch(["q"], "c", 1, 0)] == ["1"]


def test_cluster_result_backend(redis_cluster: list[RedisServer]) -> None:
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in redis_cluster)
    codec = Codec()
    backend = RedisBackend(codec, url)
    results: list[object] = []
    waiter = threading.Thread(target=lambda: results.append(backend.wait("t", 10).result))
    waiter.start()
    time.sleep(0.2)
    backend.store([TaskMeta("t", states.SUCCESS, [1, 2])])
    waiter.join(10)
    assert results == [[1, 2]]
    assert [backend.chord_part_done("g", i, 3) for i in (0, 1, 1, 2, 2)] == [
        False,
        False,
        False,
        True,
        False,
    ]
    backend.close()


def test_sentinel_finds_the_master(redis_sentinel: tuple[RedisServer, RedisServer]) -> None:
    master, sentinel = redis_sentinel
    master.client().flushall()
    url = f"redis+sentinel://127.0.0.1:{sentinel.port}/0?master_name=mymaster"
    broker = RedisBroker(url)
    broker.publish([envelope(1), envelope(2, priority=9)])
    assert master.client().exists("{celeriac:q}:p9")  # it really wrote to the master
    assert [d.id for d in drain(broker, ["q"], expect=2)] == ["2", "1"]
    backend = RedisBackend(Codec(), url)
    backend.store([TaskMeta("t", states.SUCCESS, 5)])
    assert backend.wait("t", 5).result == 5
    backend.close()
    broker.close()


def test_tls_with_a_verified_certificate(tmp_path: Path) -> None:
    require_binaries("redis-server")
    if shutil.which("openssl") is None:
        missing("openssl not found: it makes the test's certificate")
    cert, key = make_certificate(tmp_path)
    server = RedisServer(
        tmp_path / "tls",
        "--tls-cert-file",
        str(cert),
        "--tls-key-file",
        str(key),
        "--tls-ca-cert-file",
        str(cert),
        "--tls-auth-clients",
        "no",
        tls_ca=cert,
    )
    server.args = ("--port", "0", "--tls-port", str(server.port), *server.args)
    server.start()
    try:
        broker = RedisBroker(server.url(0))
        broker.publish([envelope(1), envelope(2, priority=9)])
        assert [d.id for d in drain(broker, ["q"], expect=2)] == ["2", "1"]
        backend = RedisBackend(Codec(), server.url(1))
        backend.store([TaskMeta("t", states.SUCCESS, "secret")])
        assert backend.wait("t", 5).result == "secret"
        backend.close()
        broker.close()
    finally:
        server.kill()
