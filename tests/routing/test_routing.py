"""Routing: ``task_routes`` in all its forms, and which rule wins."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import AsyncResult, Celeriac
from celeriac.exceptions import ConfigurationError


@pytest.fixture
def app() -> Iterator[Celeriac]:
    url = f"memory://routing-{uuid.uuid4().hex}"
    app = Celeriac("routing-test", broker=url, backend=url, set_as_current=False)
    yield app
    app.close()


def where(app: Celeriac, result: AsyncResult[Any]) -> tuple[str, int]:
    """The queue and priority the broker holds the message under."""
    broker = app.broker
    for queue in broker.queues():
        for delivery in broker.fetch([queue], "probe", 1000, 0.0):
            broker.release("probe", [delivery.tag])
            if delivery.id == result.id:
                return delivery.queue, delivery.priority
    raise AssertionError(f"message {result.id} is in no queue")


def define(app: Celeriac, name: str, **options: Any) -> Any:
    def work(*args: Any, **kwargs: Any) -> None:
        return None

    return app.task(name=name, **options)(work)


def test_exact_names_and_globs(app: Celeriac) -> None:
    # Given the seed's routes: one task by name, a module by glob
    app.conf.task_routes = {
        "cworker.tasks.task1": {"queue": "queue1"},
        "cworker.tasks.*": {"queue": "queue2"},
    }
    task1, task2 = define(app, "cworker.tasks.task1"), define(app, "cworker.tasks.task2")
    other = define(app, "other.tasks.x")
    # Expect: the exact name beats the glob, the glob catches the rest, others go by default
    assert where(app, task1.delay())[0] == "queue1"
    assert where(app, task2.delay())[0] == "queue2"
    assert where(app, other.delay())[0] == "celeriac"


def test_a_route_may_be_a_queue_name_or_a_regex(app: Celeriac) -> None:
    app.conf.task_routes = {re.compile(r"(video|image)\.tasks\..*"): "media", "feed.*": "feeds"}
    assert where(app, define(app, "video.tasks.encode").delay())[0] == "media"
    assert where(app, define(app, "feed.fetch").delay())[0] == "feeds"


def test_pairs_are_tried_in_order(app: Celeriac) -> None:
    # Given overlapping globs where the first listed must win
    app.conf.task_routes = ([("proj.slow.*", "slow"), ("proj.*", "default-proj")],)
    assert where(app, define(app, "proj.slow.report").delay())[0] == "slow"
    assert where(app, define(app, "proj.fast").delay())[0] == "default-proj"


def test_routing_by_argument_value(app: Celeriac) -> None:
    # Given a router that sends urgent calls to a fast queue at a high priority
    def by_urgency(name: str, args: Any, kwargs: Any, options: Any, task: Any) -> Any:
        if kwargs.get("urgent"):
            return {"queue": "fast", "priority": 9}
        return None

    app.conf.task_routes = [by_urgency, {"notify.*": {"queue": "notify"}}]
    send = define(app, "notify.send")
    # Expect: the callable decides by value; when it passes, the next router answers
    assert where(app, send.delay(urgent=True)) == ("fast", 9)
    assert where(app, send.delay(urgent=False)) == ("notify", 5)


def test_import_paths_short_routers_and_celery_router_objects(app: Celeriac) -> None:
    from tests.routing.routers import CeleryStyleRouter

    app.conf.task_routes = ["tests.routing.routers:by_tenant", CeleryStyleRouter()]
    job = define(app, "billing.job")
    legacy = define(app, "billing.legacy")
    assert where(app, job.delay(tenant="big")) == ("tenant-big", 8)
    assert where(app, job.delay(tenant="small"))[0] == "celeriac"
    assert where(app, legacy.delay())[0] == "legacy"


def test_precedence_of_queue(app: Celeriac) -> None:
    app.conf.task_routes = {"p.routed": {"queue": "from-route"}}
    app.conf.task_default_queue = "fallback"
    routed = define(app, "p.routed", queue="from-task")
    own = define(app, "p.own", queue="from-task")
    plain = define(app, "p.plain")
    # Expect: per call > route > task option > task_default_queue
    assert where(app, routed.apply_async(queue="per-call"))[0] == "per-call"
    assert where(app, routed.delay())[0] == "from-route"
    assert where(app, own.delay())[0] == "from-task"
    assert where(app, plain.delay())[0] == "fallback"


def test_precedence_of_priority(app: Celeriac) -> None:
    app.conf.task_routes = {"p.routed": {"priority": 7}, "p.to-q": {"queue": "q"}}
    app.conf.task_queues = {"q": {"priority": 3}}
    app.conf.task_default_priority = 1
    routed = define(app, "p.routed", priority=2)
    own = define(app, "p.own", priority=2)
    to_q = define(app, "p.to-q")
    plain = define(app, "p.plain")
    # Expect: per call > route > task option > the queue's default > task_default_priority
    assert where(app, routed.apply_async(priority=9)) == ("celeriac", 9)
    assert where(app, routed.delay()) == ("celeriac", 7)
    assert where(app, own.delay()) == ("celeriac", 2)
    assert where(app, to_q.delay()) == ("q", 3)
    assert where(app, plain.delay()) == ("celeriac", 1)


def test_per_call_queue_still_takes_the_routes_priority(app: Celeriac) -> None:
    # Each of queue and priority is resolved on its own
    app.conf.task_routes = {"p.t": {"queue": "routed", "priority": 8}}
    t = define(app, "p.t")
    assert where(app, t.apply_async(queue="mine")) == ("mine", 8)


def test_send_task_by_name_is_routed_without_the_code(app: Celeriac) -> None:
    app.conf.task_routes = {"remote.*": {"queue": "remote"}}
    assert where(app, app.send_task("remote.only", args=[1]))[0] == "remote"


def test_changing_routes_at_runtime_takes_effect(app: Celeriac) -> None:
    t = define(app, "late.t")
    assert where(app, t.delay())[0] == "celeriac"
    app.conf.task_routes = {"late.*": "late"}
    assert where(app, t.delay())[0] == "late"


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [(42, "returned 42"), ({"queue": ""}, "queue ''"), ({"priority": 12}, "priority 12")],
)
def test_a_bad_route_is_a_clear_error(app: Celeriac, answer: Any, complaint: str) -> None:
    def bad(name: str) -> Any:
        return answer

    app.conf.task_routes = [bad]
    t = define(app, "bad.t")
    with pytest.raises(ConfigurationError, match=re.escape(complaint)):
        t.delay()


def test_a_bad_routes_setting_is_a_clear_error(app: Celeriac) -> None:
    app.conf.task_routes = [42]
    t = define(app, "bad.t")
    with pytest.raises(ConfigurationError, match="not a dict"):
        t.delay()
