"""The chaos suite's short version: 2,000 tasks per broker under every fault at once.

``bench/chaos.py`` drains tasks through real prefork workers while it kills children
and whole workers with ``kill -9``, restarts the broker, kills its connections and sends
malformed entries; it exits non-zero on any lost task, any malformed entry not
dead-lettered, or a duplicate no kill explains. The full run is ``python bench/chaos.py``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.needs import missing

CHAOS = Path(__file__).parents[2] / "bench" / "chaos.py"

PLANS = {
    "sqlite": ["child", "supervisor", "malformed"],
    "redis": ["child", "supervisor", "restart", "connkill", "malformed"],
    "rabbitmq": ["child", "supervisor", "restart", "connkill", "malformed"],
}


def _need(broker: str) -> None:
    if broker == "redis" and shutil.which("redis-server") is None:
        missing("redis-server is not on PATH")
    if broker == "rabbitmq":
        try:
            socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
        except OSError as exc:
            missing(f"no RabbitMQ at 127.0.0.1:5672 ({exc})")
        if shutil.which("rabbitmqctl") is None or shutil.which("rabbitmq-server") is None:
            missing("rabbitmqctl and rabbitmq-server must be on PATH: the chaos run starts a node")
        try:
            import pika  # noqa: F401
        except ImportError:
            missing("pika is not installed: pip install 'celeriac[rabbitmq]'")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("broker", PLANS)
def test_no_task_is_lost_under_every_fault_at_once(broker: str) -> None:
    _need(broker)
    faults = [arg for fault in PLANS[broker] for arg in ("--fault", fault)]
    command = [
        sys.executable, str(CHAOS), "--broker", broker, *faults, "--together",
        "--tasks", "2000", "--work-ms", "10", "--malformed", "40", "--timeout", "200",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=280, env={**os.environ}, check=False
    )
    table = done.stdout + done.stderr
    [row] = [line for line in done.stdout.splitlines() if line.startswith(broker)]
    fields = row.split()
    sent, done_count, lost = int(fields[2]), int(fields[3]), int(fields[4])
    assert (sent, done_count, lost) == (2000, 2000, 0), table
    assert done.returncode == 0, table
    injected = row.partition("s  ")[2]
    for fault in PLANS[broker]:  # each fault happened during the drain
        assert fault == "malformed" or f"{fault} x" in injected, table
