"""SIGTERM stops a worker promptly wherever it is: idle, starting, or waiting for a broker
that refuses connections or never answers. Real worker processes.

The workers run ``run_worker`` from a small script (``RUNNER``) so that the idle fetch can
wait 30 s: a stop that waited for the fetch to end would take that long, so the bounds
below (generous, for a loaded machine) tell a prompt stop from a slow one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac.brokers.wake import Wake
from tests.e2e.workers import WorkerProcess, wait_until
from tests.redis.servers import RedisServer, require_binaries
from tests.vhosts import Vhosts, amqp_url

RUNNER = """
import dataclasses, sys
from celeriac import Celeriac
from celeriac.worker.options import resolve_options
from celeriac.worker.runner import run_worker

broker, pool, results = sys.argv[1], sys.argv[2], sys.argv[3]
app = Celeriac("idle", broker=broker, backend=results, worker_send_task_events=False)
options = resolve_options(app, pool=pool, concurrency=2, queues="stopping")
sys.exit(run_worker(app, dataclasses.replace(options, fetch_timeout=30.0)))
"""

POOLS = ["solo", "threads", "prefork"]
IDLE_STOP_BOUND = 2.0  # seconds; measured about 0.1 s (bench/stop_latency.py)
OUTAGE_STOP_BOUND = 5.0


def start(tmp_path: Path, broker: str, pool: str) -> WorkerProcess:
    script = tmp_path / "idle_worker.py"
    script.write_text(RUNNER)
    results = f"sqlite:///{tmp_path}/results.sqlite3"
    log = tmp_path / f"worker-{pool}-{time.monotonic_ns()}.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    return WorkerProcess([sys.executable, str(script), broker, pool, results], tmp_path, env, log)


def stop_seconds(worker: WorkerProcess, bound: float) -> float:
    """SIGTERM the worker and time its exit; fail if it is not gone within 4x ``bound``."""
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    try:
        status = worker.process.wait(4 * bound)
    except subprocess.TimeoutExpired:
        worker.kill()
        pytest.fail(f"the worker ignored SIGTERM:\n{worker.log}")
    took = time.monotonic() - started
    assert status == 0, worker.log
    return took


@pytest.fixture(params=["sqlite", "redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/broker.sqlite3"
    elif request.param == "rabbitmq":
        vhosts: Vhosts = request.getfixturevalue("rabbitmq_vhosts")
        yield amqp_url(vhosts.lend(request))
    else:
        require_binaries("redis-server")
        server = RedisServer(tmp_path / "redis", "--appendonly", "no").start()
        try:
            yield server.url(0)
        finally:
            server.kill()


@pytest.mark.parametrize("pool", POOLS)
def test_an_idle_worker_exits_soon_after_sigterm(
    tmp_path: Path, broker_url: str, pool: str
) -> None:
    """Given a ready worker with nothing to do, its consumers waiting in a 30 s fetch,
    when it gets SIGTERM, expect it gone within moments, not at the fetch's end."""
    worker = start(tmp_path, broker_url, pool)
    try:
        worker.wait_for("ready")
        time.sleep(0.3)  # the consumers are waiting in their fetch (the bound holds anyway)
        took = stop_seconds(worker, IDLE_STOP_BOUND)
        assert took < IDLE_STOP_BOUND, f"{took:.2f}s\n{worker.log}"
    finally:
        worker.kill()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("pool", POOLS)
def test_a_worker_waiting_for_a_refusing_broker_says_so_and_stops_on_sigterm(
    tmp_path: Path, pool: str
) -> None:
    """Given a worker whose Redis refuses connections (nobody listens on the port), expect
    it to say the broker is unavailable and keep retrying, and SIGTERM to end it at once."""
    worker = start(tmp_path, f"redis://127.0.0.1:{free_port()}/0", pool)
    try:
        worker.wait_for("broker unavailable, retrying with backoff")
        took = stop_seconds(worker, OUTAGE_STOP_BOUND)
        assert took < OUTAGE_STOP_BOUND, f"{took:.2f}s\n{worker.log}"
    finally:
        worker.kill()


def connected_to(pid: int, port: int) -> bool:
    """Whether process ``pid`` has a TCP connection to ``port`` on this host (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                return True
    return False


def test_sigterm_ends_a_worker_whose_broker_never_answers_at_start(tmp_path: Path) -> None:
    """Given a Redis that accepts connections but never answers (SIGSTOPped), a starting
    worker waits for it (30 s socket timeout); SIGTERM then ends it at once, saying what
    it was waiting for."""
    require_binaries("redis-server")
    server = RedisServer(tmp_path / "redis", "--appendonly", "no").start()
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    worker = start(tmp_path, server.url(0), "threads")
    try:
        wait_until(lambda: connected_to(worker.pid, server.port), 30, "the worker to connect")
        took = stop_seconds(worker, OUTAGE_STOP_BOUND)
        assert took < OUTAGE_STOP_BOUND, f"{took:.2f}s\n{worker.log}"
        assert "SIGTERM while checking the settings and the broker" in worker.log
        assert "Traceback" not in worker.log
    finally:
        worker.kill()
        os.kill(server.process.pid, signal.SIGCONT)
        server.kill()


def test_a_wake_set_by_a_signal_handler_ends_a_wait_in_the_main_thread() -> None:
    """A handler runs in the main thread wherever it is, even inside the wait it must end
    (a threading.Event there could deadlock on its own lock): the pipe cannot."""
    wake = Wake()
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: wake.set())
    timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1))
    try:
        timer.start()
        started = time.monotonic()
        assert wake.wait(10.0)
        assert time.monotonic() - started < 5.0
    finally:
        timer.join()
        signal.signal(signal.SIGUSR1, old)
