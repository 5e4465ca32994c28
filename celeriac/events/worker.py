"""Worker events and presence: who is online, with what load, without a broadcast.

A worker sends ``worker-online`` when it starts, ``worker-heartbeat`` every
``event_heartbeat_interval`` seconds (load average, active and processed
counts, pool size, queues, version, pid, freq) and ``worker-offline`` when it
stops. Each heartbeat is also written to the broker flag ``worker:<hostname>``,
so ``celeriac status`` and the dashboard read the cluster's membership and
load in one call instead of scanning the event stream or asking every worker.
A worker silent for three heartbeats is shown as lost; one silent for
``FORGET_AFTER`` seconds is forgotten, so dead workers do not pile up.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..brokers.capabilities import require
from ..version import __version__
from .dispatcher import dispatcher_for
from .event import WORKER_HEARTBEAT, WORKER_OFFLINE, WORKER_ONLINE
from .forksafe import guarded

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..brokers.base import Broker

logger = logging.getLogger("celeriac.events")

PRESENCE_PREFIX = "worker:"
FORGET_AFTER = 3600.0  # seconds of silence after which a lost worker is forgotten
MISSED_BEATS = 3  # heartbeats a worker may miss before it is shown as lost

#: What a worker reports about itself: active, processed, pool_size, queues, ...
StatsSource = Callable[[], dict[str, Any]]


def _software() -> dict[str, Any]:
    return {"sw_ident": "celeriac", "sw_ver": __version__, "sw_sys": platform.system()}


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not available on this platform
        return []


class WorkerEvents:
    """Sends a worker's online, heartbeat and offline events and keeps its presence flag."""

    def __init__(
        self, app: Celeriac, hostname: str, stats: StatsSource, interval: float | None = None
    ) -> None:
        self.app = app
        self.hostname = hostname
        self.stats = stats
        self.interval = max(0.1, float(interval or app.conf.event_heartbeat_interval))
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._broker: Broker | None = None

    def _connect(self) -> Broker:
        return guarded(self.app.connect_broker)

    def _fields(self) -> dict[str, Any]:
        fields = {
            "hostname": self.hostname,
            "pid": os.getpid(),
            "freq": self.interval,
            "loadavg": _loadavg(),
            **_software(),
        }
        try:
            fields.update(self.stats())
        except Exception:  # a heartbeat must not die with the worker's bookkeeping
            logger.exception("worker stats for the heartbeat failed")
        return fields

    def _beat(self, kind: str) -> None:
        fields = self._fields()
        fields["timestamp"] = time.time()
        dispatcher_for(self.app).send(kind, **fields)
        try:
            self._broker = self._broker or self._connect()
            flags = self._broker.flags
            if flags is not None:  # a broker without flags shows no presence
                flags.set(
                    PRESENCE_PREFIX + self.hostname,
                    orjson.dumps({**fields, "type": kind}, default=repr).decode(),
                )
        except Exception as exc:  # the broker is away; the next beat tries again
            logger.warning("cannot write the heartbeat of %s: %r", self.hostname, exc)
            self._broker = None

    def start(self) -> None:
        """Send ``worker-online`` and start the heartbeat thread."""
        self._beat(WORKER_ONLINE)
        self._thread = threading.Thread(target=self._run, name="celeriac-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._beat(WORKER_HEARTBEAT)

    def beat_soon(self) -> None:
        """Send a heartbeat now (the pool or the queues changed), not at the next interval."""
        self._wake.set()

    def stop(self) -> None:
        """Send ``worker-offline``, clear the presence flag, and flush events."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5.0)
        dispatcher_for(self.app).send(WORKER_OFFLINE, **self._fields())
        try:
            broker = self._broker or self._connect()
            if broker.flags is not None:
                broker.flags.set(PRESENCE_PREFIX + self.hostname, None)
            broker.close()
        except Exception as exc:
            logger.warning("cannot clear the presence of %s: %r", self.hostname, exc)
        self._broker = None
        dispatcher_for(self.app).flush()


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """A worker as its last heartbeat describes it."""

    hostname: str
    timestamp: float
    freq: float
    info: dict[str, Any]  # the whole heartbeat: active, processed, pool_size, queues, ...

    @property
    def age(self) -> float:
        """Seconds since the last heartbeat."""
        return max(0.0, time.time() - self.timestamp)

    @property
    def alive(self) -> bool:
        return self.age <= self.freq * MISSED_BEATS

    def get(self, name: str, default: Any = None) -> Any:
        return self.info.get(name, default)


def forget_presence(broker: Broker, hostname: str) -> bool:
    """Drop the presence of a worker that is not alive (before ``FORGET_AFTER`` does);
    False when there was none. A ValueError when it is alive: shut it down first."""
    found = {w.hostname: w for w in read_presence(broker)}.get(hostname)
    if found is None:
        return False
    if found.alive:
        raise ValueError(f"worker {hostname} is online: shut it down before forgetting it")
    require(broker, broker.flags, "flags", "worker presence").set(PRESENCE_PREFIX + hostname, None)
    return True


def read_presence(broker: Broker, forget_after: float = FORGET_AFTER) -> list[WorkerStatus]:
    """Every worker with a recent heartbeat, alive or lost, by hostname; forgets old ones."""
    flags = require(broker, broker.flags, "flags", "worker presence")
    found = []
    for name, raw in flags.read(PRESENCE_PREFIX).items():
        try:
            info = orjson.loads(raw)
            status = WorkerStatus(
                info["hostname"], float(info["timestamp"]), float(info.get("freq") or 2.0), info
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            logger.warning("ignoring malformed presence flag %s", name)
            continue
        if status.age > forget_after:
            flags.set(name, None)
            continue
        found.append(status)
    return sorted(found, key=lambda s: s.hostname)
