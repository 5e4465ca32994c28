"""What only the embedded SQLite broker promises, beyond the shared contract:
URLs, a file shared with the result backend, start-up races, and clear errors."""

from __future__ import annotations

import os
import sqlite3
import time
import warnings
from pathlib import Path

import pytest

from celeriac import states
from celeriac.backends.base import TaskMeta
from celeriac.backends.memory import MemoryBackend
from celeriac.exceptions import BrokerError, BrokerUnavailable, ConfigurationError
from celeriac.serialization import Codec
from celeriac.sqlite.backend import SQLiteBackend
from celeriac.sqlite.broker import SQLiteBroker

from .env import BrokerEnv
from .helpers import SPAWN, envelope, ids


def test_three_slashes_are_relative_and_four_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    relative = SQLiteBroker("sqlite:///sub/rel.sqlite3")
    absolute = SQLiteBroker(f"sqlite:///{tmp_path}/abs.sqlite3")  # "/" + "/tmp/..." = four
    relative.publish([envelope("q")])
    absolute.publish([envelope("q")])

    assert (tmp_path / "sub" / "rel.sqlite3").exists()
    assert (tmp_path / "abs.sqlite3").exists()
    assert relative.path == str(tmp_path / "sub" / "rel.sqlite3")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite://", "sqlite:///relative/path"),
        ("sqlite:/x.db", "sqlite:////absolute/path"),
        ("redis://localhost", "not a SQLite URL"),
        ("sqlite:///:memory:", "use memory://"),
    ],
)
def test_a_bad_url_says_what_to_write(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        SQLiteBroker(url)


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    broker = SQLiteBroker(f"sqlite:///{tmp_path}/nowhere/b.sqlite3")
    with pytest.raises(ConfigurationError, match=f"directory {tmp_path}/nowhere does not exist"):
        broker.publish([envelope("q")])


def test_bad_options_are_refused_with_the_value() -> None:
    with pytest.raises(ConfigurationError, match="lease_seconds must be > 0"):
        SQLiteBroker("sqlite:///x.sqlite3", lease_seconds=0)
    with pytest.raises(ConfigurationError, match="max_deliveries must be >= 1"):
        SQLiteBroker("sqlite:///x.sqlite3", max_deliveries=0)
    with pytest.raises(ConfigurationError, match="busy_timeout"):
        SQLiteBroker("sqlite:///x.sqlite3", busy_timeout=0)


def test_tags_of_another_broker_are_an_error(sqlite_url: str) -> None:
    broker = SQLiteBroker(sqlite_url)
    with pytest.raises(BrokerError, match="not made by the SQLite broker"):
        broker.ack("c1", ["celeriac:12"])


def test_a_lock_held_past_busy_timeout_is_unavailable_with_a_clear_message(
    sqlite_url: str,
) -> None:
    broker = SQLiteBroker(sqlite_url, busy_timeout=0.2)
    broker.publish([envelope("q")])  # tables exist
    other = sqlite3.connect(broker.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a long write transaction elsewhere
    try:
        start = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="stayed locked for more than 0.2s"):
            broker.publish([envelope("q")])
        assert time.monotonic() - start < 5
    finally:
        other.execute("ROLLBACK")
        other.close()
    broker.publish([envelope("q")])  # and it works again once the lock is gone
    assert broker.stats("q").total_waiting == 2


def test_a_file_made_by_a_newer_version_is_refused(sqlite_url: str) -> None:
    SQLiteBroker(sqlite_url).queues()
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE celeriac_schema SET version = 99 WHERE component = 'broker'")
    with pytest.raises(ConfigurationError, match="newer celeriac"):
        SQLiteBroker(sqlite_url).queues()


def test_a_file_of_the_first_version_gains_the_unique_keys_table(sqlite_url: str) -> None:
    """Given a broker file of schema version 1 (before unique tasks and concurrency limits),
    expect it upgraded in place: its messages kept, the unique-keys and concurrency-limit
    tables made, the version recorded as 3."""
    broker = SQLiteBroker(sqlite_url)
    broker.publish([envelope("q")])
    broker.close()
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE celeriac_unique")
        conn.execute("DROP TABLE celeriac_limits")
        conn.execute("DROP TABLE celeriac_limit_consumers")
        conn.execute("UPDATE celeriac_schema SET version = 1 WHERE component = 'broker'")

    upgraded = SQLiteBroker(sqlite_url)

    assert upgraded.uniques is not None
    assert upgraded.uniques.claim("k", "a", 60) == "a"
    assert upgraded.concurrency is not None
    assert upgraded.concurrency.acquire("k", 1, "a", "c", envelope("q"))
    upgraded.concurrency.renew(["c"])
    assert upgraded.stats("q").total_waiting == 1
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT version FROM celeriac_schema WHERE component = 'broker'")
        assert row.fetchone() == (3,)


def _publish_one(env: BrokerEnv, out: object) -> None:
    env.connect().publish([envelope("startup")])
    out.put(os.getpid())  # type: ignore[attr-defined]


def test_processes_starting_at_once_on_a_new_file_create_it_once(tmp_path: Path) -> None:
    env = BrokerEnv("celeriac.sqlite.broker:SQLiteBroker", f"sqlite:///{tmp_path}/new.sqlite3")
    out = SPAWN.Queue()
    procs = [SPAWN.Process(target=_publish_one, args=(env, out)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0] * 4
    assert env.connect().stats("startup").total_waiting == 4


def test_waiting_for_work_does_not_spin(sqlite_url: str) -> None:
    broker = SQLiteBroker(sqlite_url)
    broker.queues()
    cpu, wall = time.process_time(), time.monotonic()

    assert broker.fetch(["idle"], "c1", 1, 1.0) == []

    assert time.monotonic() - wall >= 0.95
    assert time.process_time() - cpu < 0.2  # mostly asleep, not polling flat out


def test_broker_and_backend_share_one_file(sqlite_url: str) -> None:
    """Given the default set-up (one file for both), results and messages do not clash,
    and ``complete`` stores the result and acks in one transaction."""
    broker = SQLiteBroker(sqlite_url)
    backend = SQLiteBackend(Codec(), sqlite_url)
    broker.publish([envelope("q", task_id="t1"), envelope("q", task_id="t2")])
    first, second = broker.fetch(["q"], "c1", 2, 0.0)

    broker.complete("c1", [first.tag], backend, [TaskMeta("t1", states.SUCCESS, result=1)])
    broker.complete("c1", [second.tag], MemoryBackend(Codec()), [TaskMeta("t2", states.SUCCESS)])

    assert backend.get("t1").result == 1
    assert backend.get("t2").state == states.PENDING  # stored in the other backend
    assert broker.stats("q").in_flight == 0
    assert ids(broker.fetch(["q"], "c1", 2, 0.0)) == []
    with sqlite3.connect(broker.path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert all(t.startswith(("celeriac_", "sqlite_")) for t in tables)


def test_a_forked_child_opens_its_own_connection(sqlite_url: str) -> None:
    """Given a broker in use when the process forks, the child's use of the same object
    works on a connection of its own, and the parent's keeps working after the child exits."""
    broker = SQLiteBroker(sqlite_url)
    broker.publish([envelope("q", task_id="parent-1")])
    with warnings.catch_warnings():  # 3.12+ warns about forking a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            broker.publish([envelope("q", task_id="child")])
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

    broker.publish([envelope("q", task_id="parent-2")])
    assert sorted(ids(broker.fetch(["q"], "c1", 10, 0.0))) == ["child", "parent-1", "parent-2"]
