"""The example's README, run as written on a fresh copy: the commands a new user types."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .cluster import fresh_copy
from .conftest import EXAMPLE

pytestmark = pytest.mark.slow

SETUP = ("./scripts/setup ", "source .venv/bin/activate")  # this test runs in that venv already


def readme_commands() -> list[str]:
    """The first shell block of "Run it on this machine", minus the venv set-up."""
    text = (EXAMPLE / "README.md").read_text()
    block = text.split("## Run it on this machine", 1)[1].split("```bash", 1)[1]
    lines = [line for line in block.split("```", 1)[0].strip().splitlines() if line.strip()]
    assert lines[0].startswith(SETUP[0]) and lines[1] == SETUP[1], lines[:2]
    return lines[2:]


def test_the_readme_runs_as_written(tmp_path: Path) -> None:
    # Given a fresh copy of the repository's example and a shell with only the venv on PATH
    fresh_copy(tmp_path / "examples" / "django")
    script = "\n".join(
        [
            "set -e",
            "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT",
            *readme_commands(),
        ]
    )
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CELERIAC_", "DJANGO_", "POSTGRES_"))
        and name not in ("BROKER_URL", "SQLITE_PATH", "PYTHONPATH", "DEFAULT_RATE_LIMIT")
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    shell = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = shell.communicate(timeout=100)
    except subprocess.TimeoutExpired:
        os.killpg(shell.pid, signal.SIGKILL)
        output, _ = shell.communicate()
        raise AssertionError(f"the README's commands did not finish in 100s:\n{output}") from None
    # Expect every scenario to pass, and the workers to have logged no error
    logs = {log.name: log.read_text() for log in (tmp_path / "examples" / "django").glob("*.log")}
    assert shell.returncode == 0, f"{output}\n{logs}"
    assert "all scenarios passed" in output
    assert set(logs) == {"queue1.log", "queue2.log", "standalone.log"}
    for name, log in logs.items():
        assert "ERROR" not in log and "Traceback" not in log, f"{name}:\n{log}"


def postgresql_commands() -> list[str]:
    """The README's PostgreSQL tip, minus the venv set-up (this test runs in that venv)."""
    text = (EXAMPLE / "README.md").read_text()
    block = text.split("**PostgreSQL.**", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.strip() for line in block.strip().splitlines() if line.strip()]
    assert lines[0].startswith("../../scripts/setup ") and "postgresql" in lines[0], lines
    return lines[1:]


def test_the_postgresql_tip_creates_its_database_and_migrates(tmp_path: Path) -> None:
    """Given a PostgreSQL server without the example's database, When the README's tip runs
    as written (twice), Expect the database created, then found, and migrated."""
    from .pg import _admin_connection, server_lock

    project = fresh_copy(tmp_path / "examples" / "django")
    name = f"celeriac_readme_{os.getpid()}_{tmp_path.name[-8:]}".replace("-", "_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "DJANGO_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["POSTGRES_DB"] = name
    script = "\n".join(["set -e", *postgresql_commands()])
    with server_lock():
        _admin_connection().close()  # skips (fails in CI) when the server is not reachable
        try:
            outputs = []
            for _ in range(2):
                done = subprocess.run(
                    ["bash", "-c", script], cwd=project, env=env, capture_output=True,
                    text=True, timeout=90,
                )  # fmt: skip
                assert done.returncode == 0, done.stdout + done.stderr
                outputs.append(done.stdout)
            assert f"database {name} created" in outputs[0]
            assert f"database {name} exists" in outputs[1]
            assert "No migrations to apply" in outputs[1]
        finally:
            with _admin_connection() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
