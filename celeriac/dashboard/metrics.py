"""``/metrics``: Prometheus text with Flower's metric names, so Grafana boards keep working.

Counters and histograms are fed by the collector as batches arrive; gauges
(workers online, executing, prefetched, queue depth) are read at scrape time.
Each dashboard has its own registry, so several can live in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..events.event import Event
from ..exceptions import CapabilityUnavailable
from .store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Flower's six metrics plus ``celeriac_queue_length``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "flower_events", "Number of events", ["worker", "type", "task"], registry=r
        )
        self.runtime = Histogram(
            "flower_task_runtime_seconds", "Task runtime", ["worker", "task"], registry=r
        )
        self.prefetch = Histogram(
            "flower_task_prefetch_time_seconds",
            "The time the task spent waiting at the worker to be executed",
            ["worker", "task"],
            registry=r,
        )
        self.prefetched = Gauge(
            "flower_worker_prefetched_tasks",
            "Number of tasks of given type prefetched at a worker",
            ["worker", "task"],
            registry=r,
        )
        self.online = Gauge("flower_worker_online", "Worker online status", ["worker"], registry=r)
        self.executing = Gauge(
            "flower_worker_number_of_currently_executing_tasks",
            "Number of tasks currently executing at a worker",
            ["worker"],
            registry=r,
        )
        self.queue_length = Gauge(
            "celeriac_queue_length", "Messages waiting in a queue", ["queue"], registry=r
        )

    def on_batch(self, events: Sequence[Event]) -> None:
        """Count a stored batch (the collector's hook)."""
        started: list[Event] = []
        for event in events:
            worker = event.hostname or ""
            self.events.labels(worker, event.type, event.name or "").inc()
            if event.runtime is not None and event.type in ("task-succeeded", "task-failed"):
                self.runtime.labels(worker, event.name or "").observe(event.runtime)
            if event.type == "task-started" and event.task_id:
                started.append(event)
        if started:
            self._prefetch_times(started)

    def _prefetch_times(self, started: list[Event]) -> None:
        tasks = self.store.tables.tasks.c
        received_at = self.store.prepared(
            "received",
            lambda: sa.select(tasks.id, tasks.received).where(
                tasks.id.in_(sa.bindparam("ids", expanding=True))
            ),
        )
        ids = [event.task_id for event in started[:500]]
        rows = self.store.query(received_at, {"ids": ids})
        received = {row["id"]: row["received"] for row in rows}
        for event in started[:500]:
            at = received.get(event.task_id)
            if at is not None:
                self.prefetch.labels(event.hostname or "", event.name or "").observe(
                    max(0.0, event.timestamp - at)
                )

    def scrape(
        self, workers: list[dict[str, Any]], queues: Callable[[], list[dict[str, Any]]]
    ) -> bytes:
        """The text exposition, gauges refreshed from ``workers`` and ``queues()``."""
        self.online.clear()
        self.executing.clear()
        for worker in workers:
            self.online.labels(worker["hostname"]).set(1 if worker["alive"] else 0)
            self.executing.labels(worker["hostname"]).set(worker.get("active") or 0)
        self.prefetched.clear()
        tasks = self.store.tables.tasks.c
        prefetched = self.store.prepared(
            "prefetched",
            lambda: (
                sa.select(tasks.worker, tasks.name, sa.func.count().label("n"))
                .where(tasks.state == "RECEIVED")
                .group_by(tasks.worker, tasks.name)
            ),
        )
        for row in self.store.query(prefetched):
            self.prefetched.labels(row["worker"] or "", row["name"] or "").set(row["n"])
        self.queue_length.clear()
        try:
            for queue in queues():
                self.queue_length.labels(queue["queue"]).set(queue["waiting"])
        except CapabilityUnavailable:  # a broker without presence or paused queues
            pass
        return generate_latest(self.registry)
