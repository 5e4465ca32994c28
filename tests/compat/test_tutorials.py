"""Celery's First Steps and Next Steps tutorials, with only the imports changed, against
real workers on RabbitMQ with ``rpc://`` results.

Given the tutorials' files (tests/compat/tutorial/: ``tasks.py`` with
``broker="pyamqp://guest@localhost//"`` and ``backend="rpc://"``; the ``proj``
package with ``include=``, ``app.conf.update`` and ``app.start()``), when the
worker is started as the tutorials start it and the tutorials' calls are made,
expect the tutorials' answers. Each run uses a default queue of its own
(``CELERIAC_TASK_DEFAULT_QUEUE``) on the default vhost, deleted afterwards.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from celeriac import chain, chord, group
from celeriac.exceptions import ConfigurationError
from tests.e2e.workers import StartWorker, WorkerProcess, wait_until
from tests.needs import missing
from tests.rabbitmq.conftest import HOST, PORT, rabbitmq, vhost

__all__ = ["rabbitmq", "vhost"]  # the fixtures

TUTORIAL = Path(__file__).with_name("tutorial")


@pytest.fixture
def project(rabbitmq: None, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The tutorial's files in a directory of their own, importable, with a queue of this
    test's own; the modules and the queue are gone afterwards."""
    if HOST not in ("127.0.0.1", "localhost"):
        missing("the tutorials' URLs name localhost: run RabbitMQ there")
    shutil.copytree(TUTORIAL, tmp_path, dirs_exist_ok=True)
    queue = f"tutorial-{uuid.uuid4().hex[:8]}"
    env = {"CELERIAC_TASK_DEFAULT_QUEUE": queue}
    os.environ.update(env)
    sys.path.insert(0, str(tmp_path))
    try:
        yield env
    finally:
        sys.path.remove(str(tmp_path))
        for name in [
            m for m in sys.modules if m in ("tasks", "myapp") or m.split(".")[0] == "proj"
        ]:
            del sys.modules[name]
        del os.environ["CELERIAC_TASK_DEFAULT_QUEUE"]
        connection = pika.BlockingConnection(pika.ConnectionParameters(HOST, PORT))
        try:
            channel = connection.channel()
            channel.queue_delete(queue)
            channel.queue_delete(f"celeriac.dead.{queue}")
        finally:
            connection.close()


def test_first_steps(project: dict[str, str], start_worker: StartWorker) -> None:
    # $ celery -A tasks worker --loglevel=INFO
    start_worker("tasks", "--loglevel=INFO", env=project)
    tasks = importlib.import_module("tasks")
    # >>> result = add.delay(4, 4)
    result = tasks.add.delay(4, 4)
    wait_until(result.ready, 20, "result.ready()")
    assert result.get(timeout=1) == 8
    assert result.successful() and result.state == "SUCCESS"
    tasks.app.close()


def test_next_steps(project: dict[str, str], start_worker: StartWorker) -> None:
    # $ celery -A proj worker -l INFO
    start_worker("proj", "-l", "INFO", env=project)
    tasks = importlib.import_module("proj.tasks")
    add, mul, xsum = tasks.add, tasks.mul, tasks.xsum
    assert add.delay(2, 2).get(timeout=20) == 4
    assert add.apply_async((2, 2), countdown=1).get(timeout=20) == 4
    # Canvas: groups and chains with rpc:// results
    assert group(add.s(i, i) for i in range(10))().get(timeout=20) == [
        0, 2, 4, 6, 8, 10, 12, 14, 16, 18
    ]  # fmt: skip
    assert chain(add.s(4, 4) | mul.s(8))().get(timeout=20) == 64
    assert (add.s(4, 4) | mul.s(8))().get(timeout=20) == 64
    # A chord needs results a worker can read: rpc:// says so before sending anything
    with pytest.raises(ConfigurationError, match="result backend"):
        chord((add.s(i, i) for i in range(10)), xsum.s())()
    tasks.app.close()


def test_rpc_results_need_rabbitmq() -> None:
    from celeriac import Celeriac

    with pytest.raises(ConfigurationError, match=r"rpc:// .* must be RabbitMQ"):
        Celeriac("t", broker="redis://localhost:6379/0", backend="rpc://", set_as_current=False)
    app = Celeriac("t", backend="rpc://", set_as_current=False)  # no broker yet: later
    with pytest.raises(ConfigurationError, match="embedded SQLite broker"):
        app.finalize()


def test_rpc_results_carry_progress_to_a_polling_client(
    vhost: str, start_worker: StartWorker, tmp_path: Path
) -> None:
    """update_state through rpc://: the client polling ``state`` / ``info`` sees each step."""
    from tests.compat.helpers import project_module

    broker = f"amqp://guest@{HOST}:{PORT}/{vhost}"
    queue = f"progress-{uuid.uuid4().hex[:8]}"
    env = {
        "CELERIAC_BROKER_URL": broker,
        "CELERIAC_RESULT_BACKEND": "rpc://",
        "CELERIAC_TASK_DEFAULT_QUEUE": queue,
        "HOOKS_LOG": str(tmp_path / "hooks.log"),
    }
    with project_module("hooks_app", tmp_path) as module:
        app = module.app
        app.conf.update(broker_url=broker, result_backend="rpc://", task_default_queue=queue)
        start_worker("hooks_app", "-P", "threads", "-c", "1", env=env)
        gate = tmp_path / "gate"
        result = module.progress.delay(2, str(gate))
        wait_until(lambda: result.info == {"current": 1, "total": 2}, 20, "step 1")
        assert result.state == "PROGRESS" and not result.ready()
        Path(f"{gate}.1").touch()
        wait_until(lambda: result.info == {"current": 2, "total": 2}, 20, "step 2")
        Path(f"{gate}.2").touch()
        assert result.get(timeout=20) == "done"
        assert result.state == "SUCCESS"
        app.close()


def test_celerys_app_example_run_as_a_script(
    project: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/app/myapp.py: ``python myapp.py worker -l INFO``, with a result backend
    added as its comment says (here through the environment, as deployments do)."""
    monkeypatch.setenv("CELERIAC_RESULT_BACKEND", "rpc")  # Celery's alias of rpc://
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    args = [sys.executable, "myapp.py", "worker", "-l", "INFO"]  # as its docstring says
    worker = WorkerProcess(args, tmp_path, env, tmp_path / "myapp.log")
    try:
        worker.wait_for("ready")
        myapp = importlib.import_module("myapp")
        assert myapp.add.delay(16, 16).get(timeout=20) == 32
        myapp.app.close()
        assert worker.stop() == 0
    finally:
        worker.kill()
