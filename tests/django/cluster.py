"""The example project run as users run it: a fresh copy, real workers, ``manage.py``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.workers import WorkerProcess, launch

from .conftest import EXAMPLE

PYTHON = sys.executable


def fresh_copy(destination: Path) -> Path:
    """The example as a fresh clone has it: no databases, logs or caches."""
    ignore = shutil.ignore_patterns("*.sqlite3*", "*.log", "__pycache__")
    shutil.copytree(EXAMPLE, destination, ignore=ignore)
    return destination


def manage(project: Path, env: dict[str, str], *args: str, timeout: float = 90) -> str:
    """Run ``python manage.py ARGS`` in the project; fail with its output unless it succeeds."""
    done = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{output}"
    return output


@contextmanager
def workers(
    project: Path, env: dict[str, str], *specs: tuple[str, ...]
) -> Iterator[list[WorkerProcess]]:
    """Start ``celeriac -A djcelery worker SPEC`` for each spec; kill them all at the end."""
    started: list[WorkerProcess] = []
    try:
        for spec in specs:
            started.append(launch("djcelery", *spec, cwd=project, env=env, ready=False))
        for worker in started:
            worker.wait_for("ready")
        yield started
    except AssertionError as failure:  # what the workers said is half of the story
        logs = "\n".join(f"--- worker {' '.join(w.args[3:])}:\n{w.log}" for w in started)
        raise AssertionError(f"{failure}\n{logs}") from failure
    finally:
        for worker in started:
            worker.kill()
