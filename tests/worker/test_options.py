"""Worker options: the command line over the app's settings, checked once."""

from __future__ import annotations

import socket

import pytest

from celeriac import Celeriac
from celeriac.exceptions import ConfigurationError
from celeriac.worker.options import node_name, resolve_options


def make_app(**settings: object) -> Celeriac:
    return Celeriac("opts", broker="memory://opts", set_as_current=False, **settings)


def test_default_queues_are_the_default_queue_and_declared_ones() -> None:
    app = make_app(task_default_queue="main", task_queues={"q1": {}, "q2": {"priority": 3}})
    assert resolve_options(app).queues == ("main", "q1", "q2")


def test_dash_q_consumes_exactly_those_and_dash_x_drops() -> None:
    app = make_app(task_queues=["q1"])
    assert resolve_options(app, queues="a,b , c").queues == ("a", "b", "c")
    assert resolve_options(app, queues="a,b,c", exclude_queues="b").queues == ("a", "c")
    assert resolve_options(app, exclude_queues="q1").queues == ("celeriac",)


def test_excluding_every_queue_is_explained() -> None:
    with pytest.raises(ConfigurationError, match="no queue left to consume.*-Q"):
        resolve_options(make_app(), queues="a", exclude_queues="a")


def test_settings_fill_in_what_the_command_line_leaves_out() -> None:
    app = make_app(
        worker_concurrency=3,
        worker_prefetch_multiplier=2,
        worker_pool="threads",
        worker_max_tasks_per_child=10,
        worker_max_memory_per_child=50_000,
    )
    options = resolve_options(app)
    assert (options.pool, options.concurrency, options.prefetch_multiplier) == ("threads", 3, 2)
    assert (options.max_tasks_per_child, options.max_memory_per_child) == (10, 50_000)
    assert resolve_options(app, concurrency=5, pool="prefork").concurrency == 5


def test_prefetch_is_per_consumer_and_bounded_by_concurrency() -> None:
    app = make_app()
    assert resolve_options(app, concurrency=4, prefetch_multiplier=2).prefetch_per_consumer == 2
    asyncio = resolve_options(app, pool="asyncio", concurrency=4, prefetch_multiplier=2)
    assert asyncio.prefetch_per_consumer == 8  # one consumer for the whole pool


def test_solo_runs_one_task_at_a_time() -> None:
    assert resolve_options(make_app(), pool="solo", concurrency=8).concurrency == 1


def test_bad_options_name_what_to_change() -> None:
    app = make_app()
    with pytest.raises(ConfigurationError, match="unknown pool 'gevent'.*prefork"):
        resolve_options(app, pool="gevent")
    with pytest.raises(ConfigurationError, match="--soft-time-limit.*below --time-limit"):
        resolve_options(app, time_limit=5, soft_time_limit=10)
    with pytest.raises(ConfigurationError, match="--time-limit must be a number"):
        resolve_options(app, time_limit=-1)


def test_node_name_expands_the_hostname() -> None:
    host = socket.gethostname()
    assert node_name(None) == f"celeriac@{host}"
    assert node_name("w1@%h") == f"w1@{host}"
    assert node_name("w1@%n") == f"w1@{host.partition('.')[0]}"
    assert node_name("web1") == "celeriac@web1"  # as in Celery: no @ names the host part
