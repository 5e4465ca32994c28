"""A worker on Redis: refused credentials end it before "ready"; an outage does not,
and a warm stop during one is quick."""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.workers import launch
from tests.worker.fixtures import make_sandbox
from tests.worker.test_preflight import run_to_exit

from .servers import RedisServer, require_binaries


def test_refused_credentials_end_the_worker_before_ready(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    # Given a user whose password the worker gets wrong
    redis_server.client().acl_setuser(
        "faulty", enabled=True, passwords=["+right"], commands=["+@all"], keys=["*"], channels=["*"]
    )
    url = f"redis://faulty:wrong@127.0.0.1:{redis_server.port}/0"
    # When a worker starts, Expect one line naming the setting, exit 2, no "ready"
    status, log, took = run_to_exit(
        tmp_path, {"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": url}
    )
    assert status == 2 and took < 15, log
    assert "ready" not in log and "Traceback" not in log
    [error] = [line for line in log.splitlines() if line.startswith("error:")]
    assert "broker_url" in error and "refused the credentials" in error and "wrong" not in error


def test_a_warm_stop_during_an_outage_exits_within_a_second(tmp_path: Path) -> None:
    # Given a prefork worker whose Redis went away
    require_binaries("redis-server")
    server = RedisServer(tmp_path / "redis").start()
    box = make_sandbox(tmp_path)
    box.app.close()
    env = {**box.env, "CELERIAC_BROKER_URL": server.url(), "CELERIAC_RESULT_BACKEND": server.url()}
    worker = launch("worker_app", "-P", "prefork", "-c", "2", cwd=tmp_path, env=env)
    try:
        server.kill()
        worker.wait_for("unavailable", 20)
        # When it gets SIGTERM
        started = time.monotonic()
        status = worker.stop(timeout=30)
        took = time.monotonic() - started
    finally:
        worker.kill()
        server.kill()
    # Expect a clean exit within a second (1.5 s allowed on a loaded machine)
    assert status == 0, worker.log
    assert took < 1.5, f"took {took:.2f}s\n{worker.log}"
