"""``celeriac -A proj worker``: start a worker."""

from __future__ import annotations

import gc
import logging
import sys
import threading

import click

from .. import signals
from ..beat import Beat
from ..worker.autoscale import parse_autoscale
from ..worker.options import resolve_options
from ..worker.runner import run_worker
from .main import app_from

LOG_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def setup_logging(level: str) -> None:
    """Log to stderr at ``level``; leave logging alone if the program configured it,
    or if a ``setup_logging`` receiver does (Celery's signal)."""
    if signals.setup_logging:
        signals.setup_logging.send(
            sender=None, loglevel=level, logfile=None, format=LOG_FORMAT, colorize=False
        )
        return
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
        root.setLevel(level)
    logging.getLogger("celeriac").setLevel(level)


@click.command()
@click.option(
    "-Q",
    "--queues",
    help="consume exactly these queues, comma-separated "
    "(default: task_default_queue and the queues of task_queues)",
)
@click.option("-X", "--exclude-queues", help="do not consume these queues, comma-separated")
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    help="children, threads or concurrent coroutines (default: worker_concurrency, "
    "else the CPU count; 100 for asyncio)",
)
@click.option(
    "-P",
    "--pool",
    type=click.Choice(["prefork", "threads", "solo", "asyncio"], case_sensitive=False),
    help="how tasks run (default: worker_pool, else prefork)",
)
@click.option(
    "-l",
    "--loglevel",
    type=click.Choice(LEVELS, case_sensitive=False),
    help="log level (default: worker_log_level, else INFO)",
)
@click.option("-n", "--hostname", help="node name; %h is the hostname (default: celeriac@%h)")
@click.option(
    "--prefetch-multiplier",
    type=click.IntRange(min=1),
    help="messages each consumer may hold, the running one included",
)
@click.option(
    "--max-tasks-per-child",
    type=click.IntRange(min=1),
    help="replace a prefork child after this many tasks",
)
@click.option(
    "--max-memory-per-child",
    type=click.IntRange(min=1),
    help="replace a prefork child after a task leaves it above this RSS, in KiB",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0, min_open=True),
    help="hard time limit in seconds for tasks that set none",
)
@click.option(
    "--soft-time-limit",
    type=click.FloatRange(min=0, min_open=True),
    help="soft time limit in seconds for tasks that set none",
)
@click.option(
    "--autoscale",
    help="MAX,MIN: grow the prefork pool up to MAX children with the queues' depth, "
    "shrink it back to MIN when idle",
)
@click.option(
    "-E",
    "--task-events",
    is_flag=True,
    default=False,
    help="send task events (worker_send_task_events)",
)
@click.option("-B", "--beat", "embed_beat", is_flag=True, help="also run a beat in this worker")
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    help="serve Prometheus metrics on this port at /metrics (needs celeriac[metrics])",
)
@click.option(
    "--metrics-address",
    default="0.0.0.0",
    show_default=True,
    help="the address --metrics-port listens on",
)
@click.pass_context
def worker(
    ctx: click.Context,
    queues: str | None,
    exclude_queues: str | None,
    concurrency: int | None,
    pool: str | None,
    loglevel: str | None,
    hostname: str | None,
    prefetch_multiplier: int | None,
    max_tasks_per_child: int | None,
    max_memory_per_child: int | None,
    time_limit: float | None,
    soft_time_limit: float | None,
    task_events: bool,
    autoscale: str | None,
    embed_beat: bool,
    metrics_port: int | None,
    metrics_address: str,
) -> None:
    """Consume tasks and run them until SIGTERM or Ctrl-C (twice: at once)."""
    app = app_from(ctx)
    setup_logging((loglevel or app.conf.worker_log_level or "INFO").upper())
    if task_events:
        app.conf.worker_send_task_events = True
    options = resolve_options(
        app,
        queues=queues,
        exclude_queues=exclude_queues,
        concurrency=concurrency,
        pool=pool,
        hostname=hostname,
        prefetch_multiplier=prefetch_multiplier,
        max_tasks_per_child=max_tasks_per_child,
        max_memory_per_child=max_memory_per_child,
        time_limit=time_limit,
        soft_time_limit=soft_time_limit,
        autoscale=parse_autoscale(autoscale) if autoscale else None,
    )
    if metrics_port is not None:
        from ..middleware.metrics import WorkerMetrics  # the optional extra, only when asked

        app.middleware.add(WorkerMetrics(metrics_port, metrics_address))
    if not embed_beat:
        _exit(ctx, run_worker(app, options))
    runner = Beat(app)
    thread = threading.Thread(target=runner.run, name="celeriac-beat", daemon=True)
    thread.start()
    try:
        status = run_worker(app, options)
    finally:
        runner.stop()
        thread.join(timeout=10)
    _exit(ctx, status)


def _exit(ctx: click.Context, status: int) -> None:
    """End the command once the worker has stopped.

    The interpreter's teardown collects garbage over every object the engines and
    the app loaded, about 0.2 s that a stopping worker would otherwise spend after
    its work is done: freezing them first leaves that to the process's exit, as for
    any object alive at exit (``__del__`` of an object still in a cycle was never
    promised then).
    """
    gc.freeze()
    ctx.exit(status)
