"""Entries another program wrote into a queue: set aside alone, nothing else moved or lost."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from celeriac import Celeriac
from celeriac.cli import queues as queues_cli
from celeriac.cli.main import cli
from celeriac.redis.broker import RedisBroker

from .helpers import drain, envelope
from .servers import RedisServer

BAD_ENTRIES = {
    "no header": b"garbage without a header",
    "id not UTF-8": b"5:0:1:4:\xff\xfe\xfd\xfcbody",
    "id past the end": b"5:0:1:99:short",
    "empty": b"",
    "compact, header cut": b"f0:\x00\x00\x00",
    "compact, UUID cut": b"f0:\x00\x00\x00\x00\x00\x00\x00\x010:\x12\x34",
    "compact, id past the end": b"F0:\x00\x00\x00\x00\x00\x00\x00\x010:99:short",
    "compact, id not UTF-8": b"F0:\x00\x00\x00\x00\x00\x00\x00\x01:4:\xff\xfe\xfd\xfcbody",
}


@pytest.mark.parametrize("kind", BAD_ENTRIES)
@pytest.mark.parametrize("queues", [["q"], ["q", "other"]], ids=["one queue", "two queues"])
def test_a_malformed_entry_is_dead_lettered_alone_and_its_neighbours_run(
    broker: RedisBroker, redis_server: RedisServer, kind: str, queues: list[str]
) -> None:
    # Given 100 good messages, a malformed entry pushed by hand, and 100 more
    client = redis_server.client()
    broker.publish([envelope(i) for i in range(100)])
    client.rpush(broker.base("q") + ":p5", BAD_ENTRIES[kind])
    broker.publish([envelope(i) for i in range(100, 200)])
    # When a consumer drains the queue
    got = drain(broker, queues, expect=200, timeout=10)
    # Expect every good message delivered once, in order, none left held
    assert [d.id for d in got] == [str(i) for i in range(200)]
    stats = broker.stats("q")
    assert (sum(stats.waiting.values()), stats.in_flight, stats.dead) == (0, 0, 1)
    [dead] = broker.dead_letters("q")
    assert dead.reason.startswith("malformed entry") and dead.body == BAD_ENTRIES[kind]


def test_a_malformed_delayed_entry_is_dead_lettered_when_due(
    broker: RedisBroker, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    client.zadd(broker.base("q") + ":delayed", {b"not an entry": 1})
    broker.publish([envelope(1), envelope(2)])
    assert [d.id for d in drain(broker, ["q"], expect=2)] == ["1", "2"]
    [dead] = broker.dead_letters("q")
    assert dead.body == b"not an entry" and "header" in dead.reason


def test_dead_letters_list_shows_undecodable_entries_as_bytes(
    broker: RedisBroker,
    redis_server: RedisServer,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given malformed entries that went to the dead letters
    client = redis_server.client()
    client.rpush(broker.base("q") + ":p5", *BAD_ENTRIES.values())
    client.rpush(broker.base("q") + ":dead", b"\xffnot even a record")
    broker.publish([envelope("good")])
    drain(broker, ["q"], expect=1)
    app = Celeriac("dead", broker=redis_url, backend="memory://dead", set_as_current=False)
    monkeypatch.setattr(queues_cli, "app_from", lambda ctx: app)
    try:
        # When they are listed, requeued (they cannot be) and purged
        listed = CliRunner().invoke(cli, ["dead-letters", "list"])
        requeued = app.broker.requeue_dead("q", None)
        as_json = CliRunner().invoke(cli, ["dead-letters", "list", "--json"])
    finally:
        app.close()
    # Expect a listing that shows each one's bytes, and nothing requeued
    assert listed.exit_code == 0, listed.output
    assert "\\xff\\xfe\\xfd\\xfc" in listed.output and "garbage without a header" in listed.output
    assert "not even a record" in listed.output
    assert as_json.exit_code == 0 and as_json.output.count('"body"') == len(BAD_ENTRIES) + 1
    assert requeued == 0 and not sum(broker.stats("q").waiting.values())
    assert broker.purge_dead("q", None) == len(BAD_ENTRIES) + 1
