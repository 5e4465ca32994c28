"""What a worker was asked to do: the command line merged with the app's settings.

Precedence, strongest first: the command line (or keywords to
:func:`resolve_options`), then the app's ``worker_*`` settings, then defaults.
Every value is checked here, once, so the pools can trust what they get.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..brokers import broker_class
from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from ..app import Celeriac

POOLS = ("prefork", "threads", "solo", "asyncio")
DEFAULT_NODE_NAME = "celeriac@%h"
DEFAULT_ASYNCIO_CONCURRENCY = 100  # coroutines mostly wait: many per CPU is the point


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """The resolved, validated options of one worker."""

    hostname: str  # the node name, e.g. celeriac@web1
    queues: tuple[str, ...]
    pool: str
    concurrency: int
    prefetch_multiplier: int
    max_tasks_per_child: int | None = None
    max_memory_per_child: int | None = None  # KiB of resident memory
    time_limit: float | None = None  # the worker's default hard limit, seconds
    soft_time_limit: float | None = None
    shutdown_timeout: float = 60.0
    fetch_timeout: float = 1.0  # how long an idle fetch waits (a stop ends the wait at once)
    autoscale: tuple[int, int] | None = None  # (MAX, MIN) children, prefork only

    @property
    def prefetch_per_consumer(self) -> int:
        """How many messages one consumer may hold, the running one included."""
        if self.pool == "asyncio":
            return self.concurrency * self.prefetch_multiplier
        return self.prefetch_multiplier


def node_name(template: str | None) -> str:
    """Expand ``-n``: ``%h`` hostname, ``%n`` its first label, ``%d`` its domain.

    A name without ``@`` names the host part, as in Celery (``-n web1`` gives
    ``celeriac@web1``).
    """
    host = socket.gethostname()
    short, _, domain = host.partition(".")
    name = template or DEFAULT_NODE_NAME
    name = name.replace("%h", host).replace("%n", short).replace("%d", domain)
    return name if "@" in name else f"celeriac@{name}"


def _split(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [q.strip() for item in items for q in item.split(",") if q.strip()]


def resolve_queues(
    app: Celeriac, include: str | Sequence[str] | None, exclude: str | Sequence[str] | None
) -> tuple[str, ...]:
    """``-Q`` exactly, else the default queue and declared ones; minus ``-X``."""
    wanted = _split(include)
    if include is not None and not wanted:
        raise ConfigurationError(
            f"-Q {include!r} names no queue: give queue names separated by commas "
            "(-Q default,emails), or leave -Q out to consume the default and declared queues"
        )
    if not wanted:
        wanted = [app.conf.task_default_queue, *app.router.declared_queues]
    dropped = set(_split(exclude))
    queues = tuple(dict.fromkeys(q for q in wanted if q not in dropped))
    if not queues:
        raise ConfigurationError(
            f"no queue left to consume: -X {','.join(sorted(dropped))} removes every queue of "
            f"{','.join(wanted)}; name the queues to consume with -Q"
        )
    return queues


def _positive(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a whole number of at least 1, not {value!r}")
    return value


def _seconds(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(f"{name} must be a number of seconds above 0, not {value!r}")
    return float(value)


def _concurrency(app: Celeriac, pool: str, value: int | None) -> int:
    if pool == "solo":
        return 1
    if value is None:
        value = app.conf.worker_concurrency
    value = _positive("concurrency (-c)", value)
    if value is not None:
        return value
    if pool == "asyncio":
        return DEFAULT_ASYNCIO_CONCURRENCY
    return os.cpu_count() or 1


def resolve_options(
    app: Celeriac,
    *,
    queues: str | Sequence[str] | None = None,
    exclude_queues: str | Sequence[str] | None = None,
    concurrency: int | None = None,
    pool: str | None = None,
    hostname: str | None = None,
    prefetch_multiplier: int | None = None,
    max_tasks_per_child: int | None = None,
    max_memory_per_child: int | None = None,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
    autoscale: tuple[int, int] | None = None,
) -> WorkerOptions:
    """Merge explicit options over the app's settings and check them."""
    conf = app.conf
    pool = (pool or conf.worker_pool or "prefork").lower()
    if pool not in POOLS:
        raise ConfigurationError(f"unknown pool {pool!r}: use one of {', '.join(POOLS)} (-P)")
    soft = _seconds("--soft-time-limit", soft_time_limit)
    hard = _seconds("--time-limit", time_limit)
    if soft is not None and hard is not None and soft >= hard:
        raise ConfigurationError(
            f"--soft-time-limit ({soft}s) must be below --time-limit ({hard}s): the soft limit "
            "warns the task before the hard one stops it"
        )
    multiplier = (
        prefetch_multiplier
        or conf.worker_prefetch_multiplier
        or broker_class(app.broker_url).default_prefetch_multiplier
    )
    if autoscale is not None:
        if pool != "prefork":
            raise ConfigurationError(
                f"--autoscale grows and shrinks prefork children: the {pool} pool cannot; "
                "use -P prefork, or a fixed -c"
            )
        concurrency = autoscale[1]  # start small, as Celery does
    return WorkerOptions(
        hostname=node_name(hostname),
        queues=resolve_queues(app, queues, exclude_queues),
        pool=pool,
        concurrency=_concurrency(app, pool, concurrency),
        prefetch_multiplier=_positive("--prefetch-multiplier", multiplier) or 1,
        max_tasks_per_child=_positive(
            "--max-tasks-per-child", max_tasks_per_child or conf.worker_max_tasks_per_child
        ),
        max_memory_per_child=_positive(
            "--max-memory-per-child", max_memory_per_child or conf.worker_max_memory_per_child
        ),
        time_limit=hard,
        soft_time_limit=soft,
        shutdown_timeout=float(conf.worker_shutdown_timeout),
        autoscale=autoscale,
    )
