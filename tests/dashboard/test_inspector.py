"""Worker pages ask the worker once per few seconds, and show its configuration redacted."""

from __future__ import annotations

from typing import Any

from celeriac.dashboard.inspector import (
    HIDDEN,
    WorkerInspector,
    redact_conf,
    registered_with_limits,
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


class _SilentControl(_Control):
    def inspect(self, destination: list[str], timeout: float) -> _Inspect:
        control = self

        class Silent(_Inspect):
            def query(self, what: str) -> dict[str, Any] | None:
                control.sent.append(what)
                return None

        return Silent(self)


def test_a_silent_worker_costs_one_timeout_not_one_per_query() -> None:
    app = _App()
    app.control = _SilentControl()
    details = WorkerInspector(app).details("gone")  # type: ignore[arg-type]
    assert app.control.sent == ["stats"]
    assert details["answered"] is False
    assert details["active"] is None and details["registered"] is None
