"""How long an idle worker takes to exit after SIGTERM, per broker and pool.

    python bench/stop_latency.py [--rounds 5] [--brokers sqlite,redis,amqp]
                                 [--pools solo,threads,prefork]

Each round starts ``celeriac worker`` on a queue of its own, waits for "ready",
lets it sit idle a moment (so it is blocked in its fetch), sends SIGTERM and
times until the process has exited. Redis and RabbitMQ are the local servers
(``CELERIAC_BENCH_REDIS``, ``CELERIAC_BENCH_AMQP`` to change them); nothing is
flushed.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = """
from celeriac import Celeriac
app = Celeriac("stopapp")
"""

IDLE = 1.5  # seconds idle before SIGTERM: long enough to be blocked in a fetch


def broker_url(name: str, directory: Path) -> str:
    if name == "sqlite":
        return f"sqlite:///{directory}/broker.sqlite3"
    if name == "redis":
        return os.environ.get("CELERIAC_BENCH_REDIS", "redis://localhost:6379/0")
    return os.environ.get("CELERIAC_BENCH_AMQP", "amqp://guest:guest@localhost:5672//")


def one_stop(url: str, pool: str, directory: Path) -> float:
    """Seconds from SIGTERM to exit of one idle worker."""
    path = os.pathsep.join(p for p in (str(directory), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "CELERIAC_BROKER_URL": url, "PYTHONPATH": path}
    env["CELERIAC_RESULT_BACKEND"] = f"sqlite:///{directory}/results.sqlite3"
    log = directory / "worker.log"
    with open(log, "wb") as out:
        command = [sys.executable, "-m", "celeriac", "-A", "stopapp", "worker"]
        command += ["-P", pool, "-c", "2", "-Q", "stop-latency", "-l", "WARNING"]
        process = subprocess.Popen(command, cwd=directory, env=env, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 30
            while "ready" not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"worker did not start:\n{log.read_text()}")
                time.sleep(0.02)
            time.sleep(IDLE)
            started = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            process.wait(60)
            return time.perf_counter() - started
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--brokers", default="sqlite,redis,amqp")
    parser.add_argument("--pools", default="solo,threads,prefork")
    args = parser.parse_args()
    print(f"{'broker':8} {'pool':8} {'median ms':>10} {'max ms':>8}  (SIGTERM to exit, idle)")
    for name in args.brokers.split(","):
        for pool in args.pools.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                directory = Path(tmp)
                (directory / "stopapp.py").write_text(APP)
                url = broker_url(name, directory)
                times = [one_stop(url, pool, directory) * 1000 for _ in range(args.rounds)]
            print(f"{name:8} {pool:8} {statistics.median(times):10.0f} {max(times):8.0f}")


if __name__ == "__main__":
    main()
