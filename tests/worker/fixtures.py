"""A sandbox for worker process tests: the test app in a temporary directory, a SQLite
broker file next to it, and a client app in the test process to send tasks and read
results by name."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from celeriac import AsyncResult, Celeriac

APP_SOURCE = Path(__file__).with_name("worker_app.py")
APP = "worker_app"  # the module name in the sandbox, and the prefix of its task names


@dataclass
class Sandbox:
    dir: Path
    url: str
    lease: float
    env: dict[str, str]
    app: Celeriac  # the client: same broker and backend as the workers

    def send(self, task: str, *args: Any, **options: Any) -> AsyncResult[Any]:
        """Send ``worker_app.<task>`` with these arguments."""
        return self.app.send_task(f"{APP}.{task}", list(args), **options)

    def file(self, name: str) -> str:
        return str(self.dir / name)

    def lines(self, name: str) -> list[list[str]]:
        """The lines of a record file, split into words; [] while it does not exist."""
        path = self.dir / name
        return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def make_sandbox(tmp_path: Path, lease: float = 2.0) -> Sandbox:
    shutil.copy(APP_SOURCE, tmp_path / f"{APP}.py")
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    env = {
        "CELERIAC_BROKER_URL": url,
        "CELERIAC_RESULT_BACKEND": url,
        "WORKER_APP_LEASE": str(lease),
    }
    client = Celeriac(
        "client",
        broker=url,
        backend=url,
        set_as_current=False,
        broker_transport_options={"visibility_timeout": lease},
        worker_send_task_events=False,
    )
    return Sandbox(tmp_path, url, lease, env, client)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = make_sandbox(tmp_path)
    yield box
    box.app.close()
