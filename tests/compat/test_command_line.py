"""The command line a Celery user scripts: ``app.start()`` / ``worker_main()``,
``celeriac shell``, ``celeriac report``, ``celeriac multi``, against real processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac.exceptions import ConfigurationError
from tests.e2e.workers import CELERIAC, WorkerProcess, alive, wait_until

HERE = Path(__file__).parent


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Celeriac, dict[str, str]]]:
    """cli_app.py in ``tmp_path`` with a SQLite broker; a client app on the same."""
    shutil.copy(HERE / "cli_app.py", tmp_path / "cli_app.py")
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    env = {
        **os.environ,
        "CELERIAC_BROKER_URL": url,
        "CELERIAC_RESULT_BACKEND": url,
        "PYTHONPATH": str(tmp_path),
    }
    client = Celeriac("client", broker=url, backend=url, set_as_current=False)
    yield client, env
    client.close()


@pytest.mark.parametrize("how", [["worker"], ["main"]], ids=["start", "worker_main"])
def test_python_app_py_worker_runs_a_worker(
    how: list[str], project: tuple[Celeriac, dict[str, str]], tmp_path: Path
) -> None:
    client, env = project
    args = [sys.executable, "cli_app.py", *how, "-P", "threads", "-c", "1"]
    worker = WorkerProcess(args, tmp_path, env, tmp_path / "worker.log")
    try:
        worker.wait_for("ready")
        assert client.send_task("cli_app.add", [2, 3]).get(timeout=20) == 5
        assert worker.stop() == 0
    finally:
        worker.kill()


def test_worker_main_needs_the_worker_command() -> None:
    app = Celeriac("t", broker="memory://", set_as_current=False)
    with pytest.raises(ConfigurationError, match="must include the worker command"):
        app.worker_main(["inspect", "ping"])


def test_shell_has_the_app_its_tasks_and_the_canvas(
    project: tuple[Celeriac, dict[str, str]], tmp_path: Path
) -> None:
    _, env = project
    done = subprocess.run(
        [CELERIAC, "-A", "cli_app", "shell"],
        input="print('ready:', add(2, 3), app.main, group.__name__, add.name)\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=30,
        check=True,
    )
    assert "ready: 5 cli_app group cli_app.add" in done.stdout


def test_report_shows_versions_and_settings_without_passwords(
    project: tuple[Celeriac, dict[str, str]], tmp_path: Path
) -> None:
    _, env = project
    env = {**env, "CELERIAC_RESULT_BACKEND": "redis://:s3cret@localhost:6379/1"}
    done = subprocess.run(
        [CELERIAC, "-A", "cli_app", "report"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=30,
        check=True,
    )
    assert done.stdout.startswith("software -> celeriac:")
    assert "result_backend: 'redis://:***@localhost:6379/1'" in done.stdout
    assert "task_default_queue: 'celeriac'" in done.stdout
    assert "s3cret" not in done.stdout


def _multi(tmp_path: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [CELERIAC, "multi", *args, "-A", "cli_app"],  # the app among the options, as Celery
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_multi_start_show_restart_stop(
    project: tuple[Celeriac, dict[str, str]], tmp_path: Path
) -> None:
    client, env = project
    options = ["-P", "threads", "-c", "1", "--pidfile=run/%n.pid", "--logfile=log/%n%I.log"]
    pids: list[int] = []
    try:
        # When two named workers start, detached, with pid and log files
        out = _multi(tmp_path, env, "start", "w1", "w2", *options)
        assert "w1@" in out and "w2@" in out
        for name in ("w1", "w2"):
            pids.append(int((tmp_path / f"run/{name}.pid").read_text()))
            wait_until(
                lambda n=name: "ready" in (tmp_path / f"log/{n}.log").read_text(),
                30,
                f"{name} ready",
            )
        assert all(alive(pid) for pid in pids)
        assert client.send_task("cli_app.add", [1, 1]).get(timeout=20) == 2
        # show prints each worker's command; start again leaves running ones alone
        shown = _multi(tmp_path, env, "show", "w1", "w2", *options)
        assert "worker -n w1@" in shown and "-P threads" in shown
        assert "already running" in _multi(tmp_path, env, "start", "w1", *options)
        # restart replaces the process
        _multi(tmp_path, env, "restart", "w1", *options)
        new = int((tmp_path / "run/w1.pid").read_text())
        pids.append(new)
        assert new != pids[0] and not alive(pids[0]) and alive(new)
        # stop waits for each warm shutdown and removes the pid files
        _multi(tmp_path, env, "stop", "w1", "w2", *options)
        assert not any(alive(pid) for pid in pids)
        assert not (tmp_path / "run/w1.pid").exists() and not (tmp_path / "run/w2.pid").exists()
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
