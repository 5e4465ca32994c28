"""Real beat processes for tests: an app module on disk, ``celeriac beat`` subprocesses,
and what they sent, read back from the broker by the due time each message carries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from celeriac import Celeriac
from celeriac.brokers.capabilities import Lease
from celeriac.message import decode

APP = """
from celeriac import Celeriac

app = Celeriac("beatapp", broker={url!r}, beat_lease_seconds={lease!r})
app.conf.beat_schedule = {{
    name: {{"task": "beatapp.tick", "schedule": 1.0, "catch_up": catch_up}}
    for name, catch_up in {entries!r}.items()
}}


@app.task
def tick():
    return None
"""


@dataclass(frozen=True)
class Run:
    entry: str
    due: float  # seconds
    sent_at: float
    task_id: str
    catch_up: bool


class Beats:
    """``celeriac beat`` processes on one app module; killed when the test ends.

    The app's entries run every second; ``entries`` maps their names to their ``catch_up``
    (by default one entry, ``tick``, catching up once)."""

    def __init__(
        self, directory: Path, url: str, lease: float, entries: dict[str, str] | None = None
    ) -> None:
        self.directory = directory
        self.url = url
        entries = entries or {"tick": "once"}
        (directory / "beatapp.py").write_text(APP.format(url=url, lease=lease, entries=entries))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.app = Celeriac("reader", broker=url, set_as_current=False)

    def start(self, name: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(self.directory)}
        with open(self.directory / f"{name}.log", "wb") as log:  # the child keeps its copy
            proc = subprocess.Popen(
                [sys.executable, "-m", "celeriac", "-A", "beatapp", "beat", "-n", name],
                cwd=self.directory,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.procs[name] = proc
        return proc

    def lease(self) -> Lease | None:
        beat = self.app.broker.beat
        assert beat is not None
        return beat.lease()

    def wait_for_leader(self, timeout: float, other_than: str = "") -> tuple[str, float]:
        """The leading beat's name once one (not ``other_than``) holds a live lease, and when."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lease = self.lease()
            if lease is not None and lease.until > time.time() and lease.holder:
                name = lease.holder.rsplit(":", 1)[0]
                if name != other_than:
                    return name, time.time()
            time.sleep(0.02)
        raise AssertionError(f"no beat took the lead within {timeout} s: {self.logs()}")

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(10)

    def stop(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGTERM)
        assert self.procs[name].wait(10) == 0, self.logs()

    def close(self) -> None:
        """Stop every beat and close this reader's connections."""
        self.stop_all()
        self.app.close()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in self.directory.glob("*.log"))

    def runs(self) -> list[Run]:
        """Every message sent, taken off the queue, by due time."""
        broker = self.app.broker
        found: list[Run] = []
        while True:
            batch = broker.fetch(["celeriac"], "reader", 500, 0.2)
            if not batch:
                break
            for delivery in batch:
                message = decode(delivery.body, self.app.codec, delivery)
                run = message.headers["beat"]
                due, catch_up = run["due"] / 1000, run["catch_up"]
                found.append(Run(run["entry"], due, message.sent_at, message.id, catch_up))
            broker.ack("reader", [d.tag for d in batch])
        return sorted(found, key=lambda r: r.due)


def poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)
