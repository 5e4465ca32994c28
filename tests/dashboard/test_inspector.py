"""Worker pages ask the worker once per few seconds, and show its configuration redacted."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.dashboard.inspector import (
    HIDDEN,
    QUERIES,
    WorkerInspector,
    redact_conf,
    registered_with_limits,
    secret_name,
)


class _Inspect:
    def __init__(self, control: _Control) -> None:
        self.control = control

    def query(self, what: str) -> dict[str, Any] | None:
        self.control.sent.append(what)
        replies = {"active": [], "reserved": [], "stats": {"pool": {"max-concurrency": 2}}}
        replies |= {"active_queues": [{"name": "celeriac", "paused": False}]}
        replies |= {"conf": {"broker_url": "redis://u:hunter2@h:6379/0", "api_token": "t0k"}}
        return {"w1": replies[what]}


class _Control:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def inspect(self, destination: list[str], timeout: float) -> _Inspect:
        return _Inspect(self)

    def broadcast(self, command: str, arguments: dict[str, Any], *rest: Any, **options: Any) -> Any:
        self.sent.append(command)
        assert arguments == {"taskinfoitems": ["rate_limit", "soft_time_limit", "time_limit"]}
        return [{"w1": ["proj.add [rate_limit=10/m time_limit=5]", "proj.mul"]}]


class _App:
    def __init__(self) -> None:
        self.control = _Control()


def test_replies_are_cached_per_worker_and_forgotten_after_an_action() -> None:
    app = _App()
    clock = [100.0]
    inspector = WorkerInspector(app, ttl=3.0, clock=lambda: clock[0])  # type: ignore[arg-type]
    first = inspector.details("w1")
    for _ in range(10):  # ten page refreshes within the ttl
        assert inspector.details("w1") is first
    assert inspector.asked == 1
    assert app.control.sent.count("active") == 1
    clock[0] += 3.0
    inspector.details("w1")
    assert inspector.asked == 2
    inspector.forget()
    inspector.details("w1")
    assert inspector.asked == 3
    assert first["registered"] == [
        {"name": "proj.add", "rate_limit": "10/m", "soft_time_limit": None, "time_limit": "5"},
        {"name": "proj.mul", "rate_limit": None, "soft_time_limit": None, "time_limit": None},
    ]
    assert first["conf"] == {"api_token": HIDDEN, "broker_url": f"redis://u:{HIDDEN}@h:6379/0"}
    assert first["answered"] is True


def test_configuration_hides_secrets_by_name_and_passwords_in_urls() -> None:
    conf = redact_conf(
        {
            "result_backend": "redis://:p@ss@h/1",
            "broker_url": "amqp://guest:guest@rabbit//",
            "task_default_queue": "celeriac",
            "plain_url": "redis://h:6379/0",
            "aws_secret_access_key": "abc",
            "database_PASSWORD": "pw",
            "api_key": None,
            "broker_transport_options": {"sentinel_kwargs": {"password": "z"}, "ttl": 5},
            "sentinels": ["redis://:pw1@s1:26379", "redis://s2:26379"],
        }
    )
    assert conf == {
        "api_key": None,
        "aws_secret_access_key": HIDDEN,
        "broker_transport_options": {"sentinel_kwargs": {"password": HIDDEN}, "ttl": 5},
        "broker_url": f"amqp://guest:{HIDDEN}@rabbit//",
        "database_PASSWORD": HIDDEN,
        "plain_url": "redis://h:6379/0",
        "result_backend": f"redis://:{HIDDEN}@h/1",
        "sentinels": [f"redis://:{HIDDEN}@s1:26379", "redis://s2:26379"],
        "task_default_queue": "celeriac",
    }
    assert redact_conf(None) is None
    assert registered_with_limits(None) is None


@pytest.mark.parametrize(
    "name",
    [
        "password", "broker_password", "database_PASSWORD", "redis_passwd", "secret_key",
        "SECRET_KEY", "aws_secret_access_key", "api_key", "apiKey", "x-api-key",
        "private_key", "sentry.auth.token", "access_token", "github-tokens", "credentials",
        "google_application_credentials", "ssh_passphrase", "signing_key", "security_key",
    ],
)  # fmt: skip
def test_names_that_hold_secrets_are_hidden(name: str) -> None:
    assert secret_name(name)
    assert redact_conf({name: "value"}) == {name: HIDDEN}


@pytest.mark.parametrize(
    "name",
    [
        "task_default_routing_key", "routing_key", "result_key_prefix", "global_keyprefix",
        "key", "ssl_keyfile", "result_extended", "worker_max_tasks_per_child", "keys",
        "broker_connection_timeout", "monkey_patch", "task_track_started", "hotkey",
        "key_prefix", "sort_key",
    ],
)  # fmt: skip
def test_names_that_hold_no_secret_are_shown(name: str) -> None:
    assert not secret_name(name)
    assert redact_conf({name: "value"}) == {name: "value"}


class _SlowControl(_Control):
    """Every broadcast waits at a barrier that only opens once all of them wait at once."""

    def __init__(self, answer: bool) -> None:
        super().__init__()
        self.answer = answer
        self.barrier = threading.Barrier(len(QUERIES) + 1, timeout=10)

    def inspect(self, destination: list[str], timeout: float) -> _Inspect:
        control = self

        class Slow(_Inspect):
            def query(self, what: str) -> dict[str, Any] | None:
                control.barrier.wait()  # raises BrokenBarrierError when sent one by one
                if control.answer:
                    return super().query(what)
                control.sent.append(what)
                return None

        return Slow(self)

    def broadcast(self, command: str, arguments: dict[str, Any], *rest: Any, **options: Any) -> Any:
        self.barrier.wait()
        if self.answer:
            return super().broadcast(command, arguments)
        self.sent.append(command)
        return []


@pytest.mark.parametrize("answer", [True, False])
def test_the_queries_of_a_refresh_are_sent_together(answer: bool) -> None:
    """Expect every query (and registered) in flight at the same time: a refresh costs one
    round trip, and a silent worker one timeout, however many queries the page shows."""
    app = _App()
    app.control = _SlowControl(answer)
    began = time.monotonic()
    details = WorkerInspector(app).details("w1")  # type: ignore[arg-type]
    assert time.monotonic() - began < 5
    assert sorted(app.control.sent) == sorted([*QUERIES, "registered"])
    assert details["answered"] is answer
    if answer:
        assert details["stats"] == {"pool": {"max-concurrency": 2}}
        assert [row["name"] for row in details["registered"]] == ["proj.add", "proj.mul"]
    else:
        assert details["active"] is None and details["registered"] is None


def test_a_silent_workers_page_costs_about_one_timeout(tmp_path: Path) -> None:
    """Given no worker answering on a real control channel (SQLite broker), Expect the
    worker's details in about one inspect timeout (1 s), not one per query (6 s)."""
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    app = Celeriac("t", broker=url, set_as_current=False)
    try:
        began = time.monotonic()
        details = WorkerInspector(app, timeout=1.0).details("ghost@nowhere")
        elapsed = time.monotonic() - began
    finally:
        app.close()
    assert details["answered"] is False
    assert 1.0 <= elapsed < 3.0, elapsed
