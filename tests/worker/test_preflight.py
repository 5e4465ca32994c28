"""A worker that cannot work as configured stops before "ready": one line, the setting, exit 2."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac.exceptions import ConfigurationError
from celeriac.worker.options import resolve_options
from tests.e2e.workers import launch
from tests.needs import missing
from tests.worker.fixtures import make_sandbox


def run_to_exit(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str, float]:
    """Start a worker; its exit status, what it printed, and how long it took."""
    box = make_sandbox(tmp_path)
    box.app.close()
    started = time.monotonic()
    env = {**box.env, **env}
    worker = launch("worker_app", "-P", "threads", *args, cwd=tmp_path, env=env, ready=False)
    try:
        status = worker.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker did not give up:\n{worker.log}")
    finally:
        worker.kill()
    return status, worker.log, time.monotonic() - started


BAD_SETTINGS = {
    "pickle without security_key": (
        {"CELERIAC_TASK_SERIALIZER": "pickle", "CELERIAC_ACCEPT_CONTENT": "pickle"},
        "security_key",
    ),
    "SQLite file in a missing directory": (
        {"CELERIAC_BROKER_URL": "sqlite:////nonexistent-dir/sub/broker.sqlite3"},
        "broker_url",
    ),
}


@pytest.mark.parametrize("case", BAD_SETTINGS)
def test_fatal_settings_end_the_worker_before_ready_naming_the_setting(
    tmp_path: Path, case: str
) -> None:
    env, setting = BAD_SETTINGS[case]
    status, log, _ = run_to_exit(tmp_path, env)
    assert status == 2, log
    assert "ready" not in log
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and setting in errors[0], log
    assert "Traceback" not in log


def test_an_empty_queue_list_is_refused() -> None:
    app = Celeriac("q", broker="memory://q", set_as_current=False)
    for value in (",", " , ,", []):
        with pytest.raises(ConfigurationError, match="names no queue"):
            resolve_options(app, queues=value)


def test_refused_rabbitmq_credentials_end_the_worker_before_ready(tmp_path: Path) -> None:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError as exc:
        missing(f"no RabbitMQ at 127.0.0.1:5672 ({exc})")
    url = "amqp://guest:wrong-password@127.0.0.1:5672//"
    status, log, _ = run_to_exit(tmp_path, {"CELERIAC_BROKER_URL": url})
    assert status == 2 and "ready" not in log and "Traceback" not in log, log
    [error] = [line for line in log.splitlines() if line.startswith("error:")]
    assert "broker_url" in error and "refused the login" in error
    assert "wrong-password" not in error
