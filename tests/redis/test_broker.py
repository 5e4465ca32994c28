"""The Redis broker's own promises: round trips, key layout, blocking without polling."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from celeriac.exceptions import BrokerUnavailable, ConfigurationError
from celeriac.redis.broker import RedisBroker

from .helpers import commands_processed, count_round_trips, drain, envelope, script_calls
from .servers import RedisServer


def test_a_batch_of_1000_is_published_in_one_round_trip(broker: RedisBroker) -> None:
    """Given scripts loaded, when 1,000 messages are published, expect one round trip, FIFO."""
    broker.publish([envelope("warm-up")])
    broker.purge("q")
    with count_round_trips() as trips:
        broker.publish([envelope(i) for i in range(1000)])
    assert trips.value == 1
    got = drain(broker, ["q"], expect=1000)
    assert [d.id for d in got] == [str(i) for i in range(1000)]


def test_one_message_is_one_round_trip_without_a_script(
    broker: RedisBroker, redis_server: RedisServer
) -> None:
    """A single message due now is stored with one MULTI (no script); one with an eta, by
    one script call; each in one round trip."""
    broker.publish([envelope("warm-up")])
    client = redis_server.client()
    before = script_calls(client)
    with count_round_trips() as trips:
        broker.publish([envelope(1)])
    assert trips.value == 1
    assert script_calls(client) == before
    with count_round_trips() as trips:
        broker.publish([envelope(2, eta=time.time() + 60)])
    assert trips.value == 1
    assert script_calls(client) == before + 1
    assert [d.id for d in broker.fetch(["q"], "c", 10, 0)] == ["warm-up", "1"]
    assert broker.stats("q").delayed == 1


def test_single_publishes_keep_fifo_across_queues_of_one_priority(broker: RedisBroker) -> None:
    for i in range(20):
        broker.publish([envelope(i, ("a", "b", "c")[i % 3])])
    taken = broker.fetch(["c", "b", "a"], "consumer", 20, 0)
    assert [int(d.id) for d in taken] == list(range(20))


def test_scripts_are_loaded_again_after_the_server_forgets_them(
    broker: RedisBroker, redis_server: RedisServer
) -> None:
    broker.publish([envelope(1)])
    redis_server.client().script_flush()
    broker.publish([envelope(2), envelope(3, queue="other")])
    assert [d.id for d in broker.fetch(["q", "other"], "c", 10, 0)] == ["1", "2", "3"]


def test_priority_is_strict_across_queues_and_fifo_within(broker: RedisBroker) -> None:
    """Given interleaved publishes to two queues, expect one order: priority, then age."""
    sent = []
    for i in range(30):
        queue, priority = ("a", "b")[i % 2], (i * 7) % 10
        broker.publish([envelope(i, queue, priority)])
        sent.append((-priority, i))
    taken = []
    while batch := broker.fetch(["b", "a"], "c", 1 + len(taken) % 3, 0):
        taken += batch
    assert [int(d.id) for d in taken] == [i for _, i in sorted(sent)]


def test_every_key_of_a_queue_shares_its_hash_tag(
    broker: RedisBroker, redis_server: RedisServer
) -> None:
    broker.publish([envelope(1, "jobs"), envelope(2, "jobs", eta=time.time() + 60)])
    held = broker.fetch(["jobs"], "worker-1", 1, 0)[0]
    broker.publish([envelope(3, "jobs")])
    broker.dead_letter("worker-1", held.tag, "test")
    keys = {k.decode() for k in redis_server.client().keys("*jobs*")}
    assert keys and all(k.startswith("{celeriac:jobs}:") for k in keys), keys


def test_global_keyprefix_names_every_key(redis_url: str, redis_server: RedisServer) -> None:
    broker = RedisBroker(redis_url, global_keyprefix="tenant7")
    broker.publish([envelope(1)])
    broker.revocations.revoke(["x"], 60)
    keys = {k.decode() for k in redis_server.client().keys("*")}
    assert keys == {
        "{tenant7:q}:p5",
        "{tenant7:q}:notify",
        "{tenant7}:queues",
        "{tenant7}:revoked",
        "{tenant7}:clock",
    }
    broker.close()


def test_a_waiting_fetch_wakes_on_publish_without_polling(
    broker: RedisBroker, redis_url: str, redis_server: RedisServer
) -> None:
    """Given a fetch blocked for 10 s, expect the server idle meanwhile and a prompt wake."""
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.extend(broker.fetch(["q"], "c", 1, 10.0)))
    waiter.start()
    client = redis_server.client()
    time.sleep(0.5)  # let it block: the assertion is about what it does while it waits
    before = commands_processed(client)
    time.sleep(0.5)
    idle = commands_processed(client) - before
    producer = RedisBroker(redis_url)
    sent = time.monotonic()
    producer.publish([envelope(1)])
    waiter.join(5)
    assert [d.id for d in got] == ["1"]  # type: ignore[attr-defined]
    assert time.monotonic() - sent < 0.5
    assert idle <= 1  # only our own INFO: nothing polled
    producer.close()


def test_a_delayed_message_wakes_a_waiting_fetch_when_due(
    broker: RedisBroker, redis_url: str
) -> None:
    got: list[object] = []
    started = time.monotonic()
    waiter = threading.Thread(target=lambda: got.extend(broker.fetch(["q"], "c", 1, 10.0)))
    waiter.start()
    time.sleep(0.1)
    producer = RedisBroker(redis_url)
    producer.publish([envelope(1, eta=time.time() + 0.4)])
    waiter.join(5)
    assert [d.id for d in got] == ["1"]  # type: ignore[attr-defined]
    assert 0.4 <= time.monotonic() - started < 2.0
    producer.close()


def test_more_messages_than_one_fetch_wake_the_next_waiting_consumer(
    broker: RedisBroker, redis_url: str
) -> None:
    got: dict[str, list[object]] = {"a": [], "b": []}
    waiters = [
        threading.Thread(target=lambda n=n: got[n].extend(broker.fetch(["q"], n, 1, 10.0)))
        for n in got
    ]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.2)
    producer = RedisBroker(redis_url)
    producer.publish([envelope(1), envelope(2)])
    producer.close()
    for waiter in waiters:
        waiter.join(5)
    assert sorted(d.id for batch in got.values() for d in batch) == ["1", "2"]  # type: ignore[attr-defined]


def test_fetch_flags_revoked_tasks_in_the_same_round_trip(broker: RedisBroker) -> None:
    broker.revocations.revoke(["2"], 60)
    broker.publish([envelope(1), envelope(2)])
    with count_round_trips() as trips:
        got = broker.fetch(["q"], "c", 10, 0)
    assert trips.value == 1
    assert {d.id: d.revoked for d in got} == {"1": False, "2": True}


def test_renew_extends_every_lease_of_a_consumer_in_one_round_trip(redis_url: str) -> None:
    broker = RedisBroker(redis_url, lease_seconds=0.6)
    broker.publish([envelope(i, queue=f"q{i % 3}") for i in range(6)])
    held = broker.fetch(["q0", "q1", "q2"], "c", 6, 0)
    broker.renew(["c"])  # learns the queues
    with count_round_trips() as trips:
        for _ in range(4):
            time.sleep(0.25)
            broker.renew(["c"])
    assert trips.value == 4
    assert broker.recover() == 0  # a second past the first lease
    broker.ack("c", [d.tag for d in held])
    assert sum(broker.stats(f"q{i}").in_flight for i in range(3)) == 0
    broker.close()


def test_recover_dead_letters_after_max_deliveries(redis_url: str) -> None:
    broker = RedisBroker(redis_url, lease_seconds=0.05, max_deliveries=2)
    broker.publish([envelope("poison")])
    for attempt in (1, 2):
        [delivery] = broker.fetch(["q"], "c", 1, 0)
        assert delivery.deliveries == attempt
        time.sleep(0.1)
        assert broker.recover() == 1
    assert broker.fetch(["q"], "c", 1, 0) == []
    [dead] = broker.dead_letters("q")
    assert (dead.id, dead.deliveries) == ("poison", 2)
    assert "max_deliveries=2" in dead.reason
    broker.close()


def test_publish_gives_up_after_its_retry_bound_naming_the_url_without_password() -> None:
    from .servers import free_port

    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    broker = RedisBroker(url, publish_retry_timeout=0.3, socket_connect_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as info:
        broker.publish([envelope(1)])
    assert 0.3 <= time.monotonic() - started < 3.0
    assert "hunter2" not in str(info.value) and "127.0.0.1" in str(info.value)
    with pytest.raises(BrokerUnavailable):  # consumers do not retry: their loop backs off
        broker.fetch(["q"], "c", 1, 0)
    broker.close()


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("redis+sentinel://h:26379/0", {}, "master_name"),
        ("redis+cluster://h:7000/3", {}, "database 3"),
        ("redis://h/x", {}, "not a number"),
        ("redis://a:1,b:2/0", {}, "several hosts"),
        ("redis://h/0", {"global_keyprefix": "{x}"}, "without braces"),
        ("redis://h/0", {"max_connections": "many"}, "max_connections"),
    ],
)
def test_bad_urls_and_options_say_what_to_change(
    url: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RedisBroker(url, **options)


def test_bad_queue_names_and_priorities_are_refused(broker: RedisBroker) -> None:
    with pytest.raises(ConfigurationError, match="without braces"):
        broker.publish([envelope(1, queue="a{b}")])
    with pytest.raises(ConfigurationError, match="0 \\(lowest\\) to 9"):
        broker.publish([envelope(1, priority=10)])


def test_celery_options_that_are_not_needed_are_accepted_with_a_reason(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="celeriac.redis"):
        RedisBroker(redis_url, priority_steps=[0, 3, 6, 9], max_conections=5).close()
    assert "priority_steps is not needed" in caplog.text
    assert "did you mean 'max_connections'" in caplog.text


def test_strings_that_are_not_tags_are_ignored_like_unknown_tags(broker: RedisBroker) -> None:
    broker.publish([envelope(1)])
    [held] = broker.fetch(["q"], "c", 1, 0)
    for bogus in ["", "nonsense", "1:q", "1:q:x", "9:q:1:c", "1:q:9999:c"]:
        broker.ack("c", [bogus])
        broker.release("c", [bogus])
        broker.dead_letter("c", bogus, "why")
    assert broker.stats("q").in_flight == 1
    broker.ack("c", [held.tag])
    assert broker.stats("q").in_flight == 0


def test_an_ack_is_one_round_trip_of_plain_commands_for_any_holders_and_queues(
    broker: RedisBroker, redis_server: RedisServer
) -> None:
    """Tags of two consumers in two queues, and an unknown one, acked in one call: one
    round trip, no script, one HDEL per holder and queue."""
    broker.publish([envelope(i, queue=f"q{i % 2}") for i in range(8)])
    first = broker.fetch(["q0", "q1"], "c1", 4, 0)
    second = broker.fetch(["q0", "q1"], "c2", 4, 0)
    tags = [d.tag for d in first + second]
    client = redis_server.client()
    scripts, commands = script_calls(client), commands_processed(client)
    with count_round_trips() as trips:
        broker.ack("c1", [*tags, "2:q0:999:c1"])
    assert trips.value == 1
    assert script_calls(client) == scripts
    assert commands_processed(client) - commands == 4 + 2  # 4 HDEL, and two INFO
    assert broker.stats("q0").in_flight == broker.stats("q1").in_flight == 0
    assert broker.recover() == 0
    assert broker.fetch(["q0", "q1"], "c1", 10, 0) == []


def test_a_consumer_lease_covers_all_it_holds_and_expires_together(redis_url: str) -> None:
    """One lease per consumer and queue: acking some messages leaves the rest leased;
    once it runs out unrenewed, recover gives back all the consumer still holds, and
    then forgets the consumer."""
    broker = RedisBroker(redis_url, lease_seconds=0.3)
    broker.publish([envelope(i) for i in range(3)])
    held = broker.fetch(["q"], "c", 3, 0)
    broker.ack("c", [held[0].tag])
    assert broker.recover() == 0
    assert broker.stats("q").in_flight == 2
    time.sleep(0.4)
    assert broker.recover() == 2
    assert broker.client.zcard(f"{broker.base('q')}:holders") == 0
    again = broker.fetch(["q"], "other", 3, 0)
    assert [(d.id, d.deliveries) for d in again] == [("1", 2), ("2", 2)]
    broker.ack("c", [d.tag for d in held[1:]])  # too late: ignored
    assert broker.stats("q").in_flight == 2
    broker.close()


def test_a_fetch_runs_the_same_few_commands_for_one_message_or_fifty(
    broker: RedisBroker, redis_server: RedisServer
) -> None:
    """Tags, held records, the lease and revocation flags are written once per fetch:
    the server's command count of a fetch does not grow with the messages it takes,
    and an ack of all of them is one command."""
    client = redis_server.client()
    broker.publish([envelope(i) for i in range(60)])
    broker.fetch(["q"], "warm", 1, 0)  # scripts loaded

    def commands(run: Any) -> int:
        before = commands_processed(client)
        run()
        return commands_processed(client) - before - 1  # this INFO

    got: list[Any] = []
    one = commands(lambda: got.extend(broker.fetch(["q"], "c", 1, 0)))
    fifty = commands(lambda: got.extend(broker.fetch(["q"], "c", 50, 0)))
    assert len(got) == 51
    assert fifty == one <= 12
    assert commands(lambda: broker.ack("c", [d.tag for d in got])) == 1
    assert [d.id for d in got] == [str(i) for i in range(1, 52)]


def test_messages_held_under_the_per_message_leases_of_earlier_versions_are_recovered(
    redis_url: str,
) -> None:
    """A worker of an earlier version kept one lease per message in "<base>:leases":
    when it dies during an upgrade, recover still gives its messages back."""
    broker = RedisBroker(redis_url, lease_seconds=30)
    broker.publish([envelope("old")])
    [held] = broker.fetch(["q"], "c", 1, 0)
    base = broker.base("q")
    broker.client.zrem(f"{base}:holders", "c")  # as an earlier version left it:
    broker.client.zadd(f"{base}:leases", {held.tag: time.time() - 1})  # a lapsed tag lease
    assert broker.stats("q").in_flight == 1  # counted by its old lease
    assert broker.recover() == 1
    [again] = broker.fetch(["q"], "other", 1, 0)
    assert (again.id, again.deliveries) == ("old", 2)
    assert broker.client.zcard(f"{base}:leases") == 0
    broker.close()
