"""Prometheus metrics served by each worker (``celeriac worker --metrics-port 9808``).

Needs the ``metrics`` extra (prometheus-client). Task counts, runtimes, queue
wait and retries are counted where tasks run, which under prefork is several
processes: prometheus-client's multiprocess mode writes each process's values
to files in one directory (``PROMETHEUS_MULTIPROC_DIR``, a private temporary
directory unless set), and the worker's main process serves their sum over
HTTP, so a child replaced after ``--max-tasks-per-child`` or a crash keeps its
counts. Running and prefetched counts are read at scrape time from the
worker's slot records, which every pool keeps in its main process.

======================================  =========  ==============================================
``celeriac_tasks_total``                counter    finished tasks by ``task`` and ``state``
``celeriac_task_runtime_seconds``       histogram  run time, by ``task``
``celeriac_task_queue_wait_seconds``    histogram  from sent (or due, for a delayed one) to start
``celeriac_task_retries_total``         counter    retries asked for, by ``task``
``celeriac_broker_roundtrip_seconds``   histogram  a consumer's broker calls, by ``operation``
                                                   (``fetch``, ``ack``, ``complete``: result + ack;
                                                   a fetch includes its wait when nothing is ready)
``celeriac_worker_running_tasks``       gauge      tasks running now
``celeriac_worker_prefetched_messages`` gauge      messages held but not running
``celeriac_worker_processed_total``     counter    tasks finished since the worker started
======================================  =========  ==============================================
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import states
from ..exceptions import MissingExtraError
from ..worker import roundtrips
from .base import Middleware

try:
    from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
    from prometheus_client import values as prometheus_values
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise MissingExtraError("metrics", "prometheus-client") from exc

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..worker.job import Job
    from ..worker.state import WorkerState

logger = logging.getLogger("celeriac.worker")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Runtime buckets (seconds): from a fast no-op task to a long batch job.
RUNTIME_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
ROUNDTRIP_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.5,
    1,
    5,
)
WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


def _multiprocess(directory: str) -> None:
    """Write values to files in ``directory`` from this process and its children on.

    prometheus-client picks its value store when it is first imported, from
    ``PROMETHEUS_MULTIPROC_DIR``; the worker's app may have imported it before the
    worker knew its directory, so the store is chosen again here.
    """
    os.environ[MULTIPROC_ENV] = directory
    if prometheus_values.ValueClass.__name__ != "MmapedValue":
        prometheus_values.ValueClass = prometheus_values.MultiProcessValue()  # type: ignore[no-untyped-call]


class _ProcessFiles(Collector):
    """The sum of every process's values, as ``MultiProcessCollector`` reads them, less the
    files of processes starting this instant: a file exists, empty, before its process
    sizes it, and reading one then fails the whole scrape."""

    def __init__(self, directory: str) -> None:
        self._directory = directory

    def collect(self) -> Iterator[Any]:
        files = []
        for path in glob.glob(os.path.join(self._directory, "*.db")):
            with contextlib.suppress(FileNotFoundError):
                if os.path.getsize(path) > 0:
                    files.append(path)
        return iter(MultiProcessCollector.merge(files, accumulate=True))  # type: ignore[no-untyped-call]


class _WorkerGauges(Collector):
    """Running and prefetched counts, read from the worker's slot records at scrape time."""

    def __init__(self, state: WorkerState) -> None:
        self._state = state

    def collect(self) -> Iterator[Any]:
        state = self._state
        running = len(state.active())
        held = state.held
        yield GaugeMetricFamily("celeriac_worker_running_tasks", "Tasks running now", value=running)
        yield GaugeMetricFamily(
            "celeriac_worker_prefetched_messages",
            "Messages held by the worker's consumers but not running",
            value=max(0, held - running),
        )
        yield CounterMetricFamily(
            "celeriac_worker_processed",
            "Tasks finished since the worker started",
            value=state.processed,
        )


class WorkerMetrics(Middleware):
    """Counts what the worker's tasks do and serves it on ``port`` at ``/metrics``."""

    def __init__(self, port: int, address: str = "0.0.0.0") -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"the metrics port must be 0 to 65535, not {port!r}")
        self.port = port
        self.address = address
        self._own_directory: str | None = None
        directory = os.environ.get(MULTIPROC_ENV)
        if not directory:
            directory = self._own_directory = tempfile.mkdtemp(prefix="celeriac-metrics-")
        self.directory = directory
        _multiprocess(directory)
        self.tasks = Counter("celeriac_tasks", "Finished tasks", ["task", "state"], registry=None)
        self.runtime = Histogram(
            "celeriac_task_runtime_seconds",
            "Task run time",
            ["task"],
            buckets=RUNTIME_BUCKETS,
            registry=None,
        )
        self.wait = Histogram(
            "celeriac_task_queue_wait_seconds",
            "Time from sent (or due) to started",
            ["task", "queue"],
            buckets=WAIT_BUCKETS,
            registry=None,
        )
        self.retries = Counter(
            "celeriac_task_retries", "Retries asked for", ["task"], registry=None
        )
        self.roundtrip = Histogram(
            "celeriac_broker_roundtrip_seconds",
            "Broker call time of the worker's consumers",
            ["operation"],
            buckets=ROUNDTRIP_BUCKETS,
            registry=None,
        )
        self.server: Any = None

    # -- the worker's main process ----------------------------------------------------
    def worker_init(self, app: Celeriac, worker: Any) -> None:
        registry = CollectorRegistry()
        registry.register(_ProcessFiles(self.directory))
        registry.register(_WorkerGauges(worker))
        self.server, _thread = start_http_server(self.port, self.address, registry=registry)
        self.port = self.server.server_port  # the one chosen, when asked for 0
        logger.info("metrics on http://%s:%d/metrics", self.address, self.port)

    def worker_shutdown(self, app: Celeriac, worker: Any) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self._own_directory is not None:
            shutil.rmtree(self._own_directory, ignore_errors=True)

    # -- where tasks run ----------------------------------------------------------------
    def worker_start(self, app: Celeriac, worker: Any) -> None:
        """Time this process's consumers' broker calls (before they connect)."""
        children = {op: self.roundtrip.labels(op) for op in roundtrips.TIMED}
        roundtrips.observer = lambda op, seconds: children[op].observe(seconds)

    def after_ack(self, job: Job) -> None:
        skipped = job.skipped
        if skipped is not None and skipped.waits:
            return  # put off to a later slot: not an outcome
        name = job.message.task
        self.tasks.labels(name, job.state).inc()
        if job.state == states.RETRY:
            self.retries.labels(name).inc()
        if job.started_at:
            self.runtime.labels(name).observe(job.runtime)
            message = job.message
            since = max(message.sent_at, message.eta or 0.0)
            if since:
                self.wait.labels(name, message.queue).observe(max(0.0, job.started_at - since))
