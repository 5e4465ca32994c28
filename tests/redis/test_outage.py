"""Redis going away is an outage, not a failure: kill -9 and restart a server with AOF."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from celeriac import states
from celeriac.backends.base import TaskMeta
from celeriac.exceptions import BrokerUnavailable
from celeriac.redis.backend import RedisBackend
from celeriac.redis.broker import RedisBroker
from celeriac.serialization import Codec

from .helpers import drain, envelope
from .servers import RedisServer, require_binaries, start_sentinel, wait_until


def test_queued_delayed_and_held_messages_survive_a_restart_and_run_once(
    aof_server: RedisServer,
) -> None:
    """Given 1,000 ready, 10,000 delayed and 10 held messages, when Redis is killed and
    restarted from its AOF, expect every message delivered exactly once."""
    broker = RedisBroker(aof_server.url(), lease_seconds=60.0)
    eta = time.time() + 1.5
    ready = [envelope(f"r{i}", priority=i % 10) for i in range(1000)]
    delayed = [envelope(f"d{i}", eta=eta) for i in range(10_000)]
    broker.publish(ready + delayed)
    held = broker.fetch(["q"], "before", 10, 0)

    aof_server.kill()
    aof_server.start()

    broker.ack("before", [d.tag for d in held])  # the lease survived with the message
    got = held + drain(broker, ["q"], "after", timeout=20, expect=1000 + 10_000 - 10)
    ids = [d.id for d in got]
    assert len(ids) == len(set(ids)) == 11_000
    assert set(ids) == {e.id for e in ready + delayed}
    assert [d.priority for d in held] == [9] * 10  # priority order held across the restart
    stats = broker.stats("q")
    assert (stats.total_waiting, stats.delayed, stats.in_flight, stats.dead) == (0, 0, 0, 0)
    broker.close()


def test_consumer_calls_raise_unavailable_during_an_outage_and_work_after(
    aof_server: RedisServer,
) -> None:
    broker = RedisBroker(aof_server.url(), socket_connect_timeout=0.5)
    broker.publish([envelope(1)])
    [delivery] = broker.fetch(["q"], "c", 1, 0)

    aof_server.kill()
    calls = {
        "fetch": lambda: broker.fetch(["q"], "c", 1, 0.1),
        "ack": lambda: broker.ack("c", [delivery.tag]),
        "renew": lambda: broker.renew(["c"]),
        "recover": broker.recover,
        "stats": lambda: broker.stats("q"),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="unavailable"):
            call()
        assert time.monotonic() - started < 3.0, name

    aof_server.start()
    broker.ack("c", [delivery.tag])  # the same broker object reconnects by itself
    broker.publish([envelope(2)])
    assert [d.id for d in broker.fetch(["q"], "c", 1, 5.0)] == ["2"]
    broker.close()


def test_a_blocked_fetch_raises_unavailable_when_the_server_dies(
    aof_server: RedisServer,
) -> None:
    broker = RedisBroker(aof_server.url(), socket_connect_timeout=0.5)
    outcome: list[BaseException] = []

    def consume() -> None:
        try:
            broker.fetch(["q"], "c", 1, 30.0)
        except BaseException as exc:
            outcome.append(exc)

    consumer = threading.Thread(target=consume)
    consumer.start()
    wait_until(
        lambda: aof_server.client().info("clients")["blocked_clients"] == 1, 5, "the fetch to block"
    )
    killed = time.monotonic()
    aof_server.kill()
    consumer.join(10)
    assert outcome and isinstance(outcome[0], BrokerUnavailable)
    assert time.monotonic() - killed < 5.0
    broker.close()


def test_a_producer_retries_until_the_server_is_back(aof_server: RedisServer) -> None:
    broker = RedisBroker(aof_server.url(), publish_retry_timeout=20.0)
    broker.publish([envelope("first")])
    aof_server.kill()
    restart = threading.Timer(0.5, aof_server.start)
    restart.start()
    broker.publish([envelope("during the outage")])
    restart.join()
    assert [d.id for d in drain(broker, ["q"], expect=2)] == ["first", "during the outage"]
    broker.close()


def test_a_result_waiter_survives_a_restart(aof_server: RedisServer) -> None:
    codec = Codec()
    backend = RedisBackend(codec, aof_server.url(1))
    results: list[object] = []
    waiter = threading.Thread(target=lambda: results.append(backend.wait("t", timeout=30).result))
    waiter.start()
    wait_until(
        lambda: aof_server.client(1).exists("celeriac:result:{t}:waiters"),
        5,
        "the waiter to register",
    )
    aof_server.kill()
    aof_server.start()
    storer = RedisBackend(codec, aof_server.url(1))
    storer.store([TaskMeta("t", states.SUCCESS, 42)])
    storer.close()
    waiter.join(20)
    assert results == [42]
    backend.close()


def test_after_a_sentinel_failover_the_broker_follows_the_new_master(tmp_path: Path) -> None:
    """Given a master, a replica and a Sentinel, when the master is killed, expect a
    producer's publish to wait for the failover and land on the new master, with the
    messages published before it (replicated) still there."""
    require_binaries("redis-server")
    master = RedisServer(tmp_path / "master", "--appendonly", "no").start()
    replica = RedisServer(tmp_path / "replica", "--replicaof", "127.0.0.1", str(master.port))
    replica.start()
    sentinel = start_sentinel(tmp_path, master, down_after_ms=500)
    try:
        wait_until(
            lambda: sentinel.client().execute_command("SENTINEL", "REPLICAS", "mymaster"),
            15,
            "the Sentinel to see the replica",
        )
        url = f"redis+sentinel://127.0.0.1:{sentinel.port}/0?master_name=mymaster"
        broker = RedisBroker(url, publish_retry_timeout=30.0, socket_connect_timeout=0.5)
        broker.publish([envelope(i) for i in range(10)])
        assert master.client().execute_command("WAIT", 1, 5000) == 1  # replicated
        master.kill()
        broker.publish([envelope("after")])
        assert replica.client().info("replication")["role"] == "master"
        got = drain(broker, ["q"], expect=11, timeout=20)
        assert [d.id for d in got] == [*map(str, range(10)), "after"]
        broker.close()
    finally:
        sentinel.kill()
        replica.kill()
        master.kill()
