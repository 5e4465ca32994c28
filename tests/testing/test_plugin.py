"""The pytest plugin, as a user's test suite meets it: loaded by its entry point, or
imported into a conftest; and the real prefork worker fixture."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac.testing.plugin import StartPreforkWorker
from tests.needs import need_module

USER_TESTS = """
from celeriac.testing import InProcessWorker, SentRecorder


def test_fixtures(celeriac_app, celeriac_worker: InProcessWorker, celeriac_sent: SentRecorder):
    @celeriac_app.task(name="user.double")
    def double(x: int) -> int:
        return 2 * x

    result = double.apply_async((21,), priority=7)
    celeriac_worker.join()
    assert result.get(timeout=0) == 42
    assert [(s.task, s.args, s.priority) for s in celeriac_sent] == [("user.double", (21,), 7)]


def test_config_fixtures(celeriac_app, celeriac_worker):
    assert celeriac_app.conf.task_default_priority == 3
    assert (celeriac_worker.options.pool, celeriac_worker.queues) == ("asyncio", ("a", "b"))
"""

CONFTEST = """
import pytest

{imports}

@pytest.fixture
def celeriac_config():
    return {{"task_default_priority": 3}}


@pytest.fixture
def celeriac_worker_options(request):
    if request.node.name == "test_config_fixtures":
        return {{"pool": "asyncio", "queues": ["a", "b"]}}
    return {{}}
"""


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_entry_point_loads_the_fixtures(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    (tmp_path / "conftest.py").write_text(CONFTEST.format(imports=""))
    done = _pytest(tmp_path)
    assert "2 passed" in done.stdout, done.stdout + done.stderr


def test_the_fixtures_import_without_the_plugin(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    imports = (
        "from celeriac.testing.plugin import celeriac_app, celeriac_sent, celeriac_worker"
        "  # noqa: F401"
    )
    (tmp_path / "conftest.py").write_text(CONFTEST.format(imports=imports))
    done = _pytest(tmp_path, "-p", "no:celeriac")
    assert "2 passed" in done.stdout, done.stdout + done.stderr


PREFORK_APP = textwrap.dedent(
    """
    import os

    from celeriac import Celeriac

    app = Celeriac("prefork_app")

    @app.task(name="prefork.where")
    def where() -> int:
        return os.getpid()
    """
)


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A broker URL that processes share: a SQLite file, or a private Redis server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/celeriac.sqlite3"
        return
    need_module("redis", "redis")
    from tests.redis.servers import RedisServer, require_binaries

    require_binaries("redis-server")
    server = RedisServer(tmp_path / "redis", "--appendonly", "no").start()
    try:
        yield server.url(0)
    finally:
        server.kill()


def test_a_real_prefork_worker_runs_tasks_in_child_processes(
    tmp_path: Path, shared_url: str
) -> None:
    (tmp_path / "prefork_app.py").write_text(PREFORK_APP)
    url = shared_url
    starter = StartPreforkWorker()
    try:
        worker = starter("prefork_app:app", url, concurrency=2, cwd=tmp_path)
        app = Celeriac("producer", broker=url, backend=url, set_as_current=False)
        pids = {app.send_task("prefork.where").get(timeout=20) for _ in range(4)}
        assert pids and worker.pid not in pids  # run by the supervisor's children
        assert worker.stop(timeout=20) == 0
        app.close()
    finally:
        starter.close()
