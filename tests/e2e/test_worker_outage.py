"""A worker rides out a broker outage: it logs it once, backs off, and resumes by itself.

Celery workers could silently stop consuming after a Redis restart (celery#7817):
here a real prefork worker loses its private Redis server (kill -9), waits, and
drains new tasks within seconds of the server coming back.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.e2e.workers import StartWorker, wait_until
from tests.redis.servers import RedisServer, require_binaries
from tests.worker.fixtures import APP, make_sandbox


def test_a_worker_resumes_consuming_after_redis_restarts(
    tmp_path: Path, start_worker: StartWorker
) -> None:
    require_binaries("redis-server")
    server = RedisServer(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always")
    server.start()
    box = make_sandbox(tmp_path, lease=2.0)
    url = server.url(0)
    box.env.update({"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": server.url(1)})
    box.app.conf.update(broker_url=url, result_backend=server.url(1))
    try:
        worker = start_worker(APP, "-c", "2", env=box.env)
        assert box.send("add", 1, 2).get(timeout=10) == 3
        server.kill()
        consumers_down = re.compile(r"consumer \S+: broker unavailable")
        wait_until(
            lambda: len(consumers_down.findall(worker.log)) == 2, 15, "both consumers' outage"
        )
        time.sleep(1.0)  # a deliberate outage length: several retries (0.1, 0.2, 0.4s...)
        server.start()
        assert box.send("add", 20, 22).get(timeout=15) == 42
        wait_until(lambda: "broker reachable again" in worker.log, 15, "the recovery log")
        log = worker.log
        # Once per consumer (and the supervisor's heartbeat), not once per retry.
        assert log.count("broker unavailable") <= 3, log
        assert log.count("broker reachable again") <= 3, log
        assert worker.stop() == 0
    finally:
        box.app.close()
        server.kill()
