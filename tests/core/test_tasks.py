"""Tasks: registration, names, options, sending, eager runs, retries, results."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from celeriac import Celeriac, shared_task, states
from celeriac.exceptions import (
    ConfigurationError,
    NotRegistered,
    SerializationError,
    TaskRevokedError,
)
from celeriac.message import Message, decode
from celeriac.middleware import Middleware
from celeriac.worker.job import Executor, Job


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Iterator[Celeriac]:
    url = f"memory://{request.node.name}"
    app = Celeriac("t", broker=url, backend=url)
    yield app
    app.close()


def run_one(app: Celeriac, queues: tuple[str, ...] = ("celeriac",)) -> None:
    """Fetch and run one message as a worker would, in this thread."""
    executor = Executor(app, "test@host", "c1", app.broker, app.backend)
    try:
        deliveries = app.broker.fetch(list(queues), "c1", 1, 1.0)
        assert deliveries, "nothing to run"
        executor.process(deliveries[0])
    finally:
        executor.close()


def test_default_name_is_module_and_function(app: Celeriac) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    assert add.name == f"{__name__}.add"
    assert app.tasks[add.name] is add
    assert add(1, 2) == 3


def test_unknown_task_option_is_refused(app: Celeriac) -> None:
    with pytest.raises(ConfigurationError, match="unknown task option.*'retrys'"):
        app.task(retrys=3)(lambda: None)


def test_delay_sends_a_routed_message_with_defaults(app: Celeriac) -> None:
    @app.task(queue="q1", priority=7)
    def t1(a: int, b: int, message: str | None = None) -> str:
        return f"{message} {a + b}"

    result = t1.delay(5, 10, message="The sum is")
    [delivery] = app.broker.fetch(["q1"], "c", 10, 0)
    message = decode(delivery.body, app.codec, delivery)
    assert (message.id, message.task, message.args) == (result.id, t1.name, (5, 10))
    assert (message.kwargs, message.queue, message.priority) == ({"message": "The sum is"}, "q1", 7)
    assert message.root_id == message.id


def test_wrong_arguments_fail_at_send_time(app: Celeriac) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    with pytest.raises(TypeError, match="add.*missing a required argument: 'b'"):
        add.delay(1)
    with pytest.raises(SerializationError, match=r"args\[1\]"):
        add.delay(1, object())


def test_result_of_a_worker_run(app: Celeriac) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    result = add.delay(2, 3)
    assert result.state == states.PENDING and not result.ready()
    run_one(app)
    assert result.get(timeout=1) == 5
    assert result.ready() and result.successful() and not result.failed()
    assert result.date_done is not None


def test_failure_reraises_the_task_exception_with_remote_traceback(app: Celeriac) -> None:
    @app.task
    def divide(a: int, b: int) -> float:
        return a / b

    result = divide.delay(1, 0)
    run_one(app)
    with pytest.raises(ZeroDivisionError) as info:
        result.get(timeout=1)
    assert "Remote traceback" in "".join(getattr(info.value, "__notes__", []))
    assert result.failed() and "ZeroDivisionError" in (result.traceback or "")
    assert isinstance(result.result, ZeroDivisionError)
    assert isinstance(result.get(propagate=False), ZeroDivisionError)


def test_get_times_out(app: Celeriac) -> None:
    @app.task
    def noop() -> None:
        return None

    with pytest.raises(TimeoutError):
        noop.delay().get(timeout=0.05)


def test_async_task_runs_on_a_loop(app: Celeriac) -> None:
    @app.task
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    result = fetch.delay(21)
    run_one(app)
    assert result.get(timeout=1) == 42


async def test_aget_is_the_async_twin(app: Celeriac) -> None:
    @app.task
    def echo(x: int) -> int:
        return x

    result = echo.delay(7)
    threading.Thread(target=run_one, args=(app,)).start()
    assert await result.aget(timeout=5) == 7


def test_bound_task_sees_its_request(app: Celeriac) -> None:
    @app.task(bind=True)
    def whoami(self) -> dict:  # type: ignore[no-untyped-def]
        return {
            "id": self.request.id,
            "retries": self.request.retries,
            "queue": self.request.delivery_info["queue"],
        }

    result = whoami.delay()
    run_one(app)
    assert result.get(timeout=1) == {"id": result.id, "retries": 0, "queue": "celeriac"}


def test_retry_goes_through_the_delayed_set(app: Celeriac) -> None:
    @app.task(bind=True, max_retries=2)
    def flaky(self) -> int:  # type: ignore[no-untyped-def]
        if self.request.retries < 2:
            raise self.retry(exc=OSError("not yet"), countdown=0.05)
        return self.request.retries

    result = flaky.delay()
    run_one(app)
    assert result.state == states.RETRY
    assert app.broker.stats("celeriac").delayed == 1
    run_one(app)
    run_one(app)
    assert result.get(timeout=1) == 2


def test_retry_with_new_arguments_and_an_eta(app: Celeriac) -> None:
    """Given a retry asking for other arguments at a unix time, expect the next attempt's
    message to carry them, due at that time."""
    scheduled: list[Message] = []

    class Spy(Middleware):
        def after_ack(self, job: Job) -> None:
            if job.retry_message is not None:
                scheduled.append(job.retry_message)

    app.middleware.add(Spy())

    @app.task(bind=True)
    def again(self, a: int, b: int = 0) -> int:  # type: ignore[no-untyped-def]
        raise self.retry(args=(10,), kwargs={"b": 5}, eta=4_000_000_000.0)

    again.delay(1)
    run_one(app)
    [message] = scheduled
    assert (message.args, message.kwargs, message.retries) == ((10,), {"b": 5}, 1)
    assert message.eta == 4_000_000_000.0


def test_autoretry_then_failure_after_max_retries(app: Celeriac) -> None:
    calls = []

    @app.task(autoretry_for=(OSError,), retry_kwargs={"max_retries": 1, "countdown": 0})
    def always_fails() -> None:
        calls.append(1)
        raise OSError("down")

    result = always_fails.delay()
    run_one(app)
    run_one(app)
    with pytest.raises(OSError, match="down"):
        result.get(timeout=1)
    assert len(calls) == 2


def test_revoked_and_expired_tasks_do_not_run(app: Celeriac) -> None:
    ran = []

    @app.task
    def work() -> None:
        ran.append(1)

    revoked = work.delay()
    revoked.revoke()
    expired = work.apply_async(expires=-1)
    run_one(app)
    run_one(app)
    assert ran == []
    with pytest.raises(TaskRevokedError, match="revoked"):
        revoked.get(timeout=1)
    with pytest.raises(TaskRevokedError, match="expired"):
        expired.get(timeout=1)


def test_unknown_task_is_dead_lettered_and_reported(app: Celeriac) -> None:
    result = app.send_task("nobody.knows", [1])
    run_one(app)
    with pytest.raises(NotRegistered, match="nobody.knows"):
        result.get(timeout=1)
    [dead] = app.broker.dead_letters("celeriac")
    assert "unknown task" in dead.reason


def test_eager_apply_and_always_eager(app: Celeriac) -> None:
    @app.task(bind=True, max_retries=3)
    def add(self, a: int, b: int) -> int:  # type: ignore[no-untyped-def]
        if self.request.retries < 1:
            raise self.retry(countdown=10)
        return a + b

    assert add.apply((1, 2)).get() == 3
    app.conf.task_always_eager = True
    assert add.delay(3, 4).get() == 7
    assert app.broker.stats("celeriac").total_waiting == 0


@pytest.fixture
def forget_shared_tasks() -> Iterator[None]:
    """Shared tasks join every app made later: take this test's out again afterwards."""
    from celeriac import current

    before = list(current._shared_tasks)
    yield
    current._shared_tasks[:] = before


@pytest.mark.usefixtures("forget_shared_tasks")
def test_shared_task_binds_to_the_current_app(request: pytest.FixtureRequest) -> None:
    @shared_task
    def ping() -> str:
        return "pong"

    url = f"memory://{request.node.name}"
    app = Celeriac("later", broker=url, backend=url)
    assert ping.name in app.tasks
    result = ping.delay()
    run_one(app)
    assert result.get(timeout=1) == "pong"


def test_acks_late_false_acks_on_receipt(app: Celeriac) -> None:
    seen = {}

    @app.task(acks_late=False)
    def once() -> None:
        seen["in_flight"] = app.broker.stats("celeriac").in_flight

    @app.task
    def late() -> None:
        seen["late_in_flight"] = app.broker.stats("celeriac").in_flight

    once.delay()
    late.delay()
    run_one(app)
    run_one(app)
    assert seen == {"in_flight": 0, "late_in_flight": 1}
    assert app.broker.stats("celeriac").in_flight == 0


def test_task_ids_are_unique_version_4_uuids() -> None:
    import uuid

    from celeriac.ids import new_id

    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids:  # every one, across several 4 KiB refills of random bytes
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_a_forked_child_never_hands_out_its_parents_next_ids() -> None:
    import os

    from celeriac.ids import new_id

    new_id()  # the parent holds random bytes for many more
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write_end, ",".join(new_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child = set(pipe.read().decode().split(","))
    os.waitpid(pid, 0)
    parent = {new_id() for _ in range(10)}
    assert len(child) == 10 and not child & parent


def test_argument_check_still_catches_keyword_mistakes(app: Celeriac) -> None:
    @app.task
    def add(a: int, b: int = 0) -> int:
        return a + b

    add.delay(1)
    add.delay(1, 2)
    with pytest.raises(TypeError, match="too many positional"):
        add.delay(1, 2, 3)
    with pytest.raises(TypeError, match="unexpected keyword"):
        add.delay(1, c=3)


def test_effective_options_are_the_tasks_own_else_the_apps_setting(app: Celeriac) -> None:
    @app.task
    def plain() -> None:
        pass

    @app.task(acks_late=False, ignore_result=True, max_retries=7, default_retry_delay=2)
    def own() -> None:
        pass

    app.conf.update(task_acks_late=True, task_default_max_retries=None)
    assert (plain.effective_acks_late, own.effective_acks_late) == (True, False)
    assert (plain.effective_ignore_result, own.effective_ignore_result) == (False, True)
    assert (plain.effective_max_retries, own.effective_max_retries) == (None, 7)
    assert (plain.effective_retry_delay, own.effective_retry_delay) == (180.0, 2)
