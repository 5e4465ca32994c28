"""``celeriac beat list | run | pause | resume``, ``status`` naming the leader, ``worker -B``:
a real beat process on SQLite, the commands run in this process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from celeriac.cli.main import cli
from celeriac.exceptions import ConfigurationError
from celeriac.message import decode

from .processes import Beats, poll

pytestmark = pytest.mark.slow
APP = ["-A", "beatapp"]


@pytest.fixture
def beats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Beats:
    made = Beats(tmp_path, f"sqlite:///{tmp_path}/cli.sqlite3", lease=2.0)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "beatapp", raising=False)
    yield made  # type: ignore[misc]
    made.close()


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli, [*APP, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_list_pause_resume_run_and_status(beats: Beats) -> None:
    beats.start("solo")
    beats.wait_for_leader(timeout=20)
    # list: the entry, its runs, and the leader
    poll(
        lambda: orjson.loads(_cli("beat", "list", "--json"))["entries"][0]["last_run"] != "-",
        5,
        "a run",
    )
    listed = orjson.loads(_cli("beat", "list", "--json"))
    assert listed["leader"].startswith("solo:")
    [entry] = listed["entries"]
    assert (entry["name"], entry["task"], entry["paused"]) == ("tick", "beatapp.tick", False)
    assert "leader: solo" in _cli("beat", "list")
    # status names the leader (and fails: no worker is online)
    status = CliRunner().invoke(cli, [*APP, "status"])
    assert "beat leader: solo" in status.output
    # pause: within a second no more runs
    assert _cli("beat", "pause", "tick").strip() == "paused tick"
    time.sleep(1.2)
    beats.runs()
    time.sleep(1.5)
    assert beats.runs() == []
    assert orjson.loads(_cli("beat", "list", "--json"))["entries"][0]["paused"] is True
    # resume: runs again within a second or so
    _cli("beat", "resume", "tick")
    poll(lambda: bool(beats.runs()), 2.5, "a run after resume")
    # run: one now, outside the schedule
    task_id = _cli("beat", "run", "tick").strip()
    broker = beats.app.broker
    found = []
    for delivery in broker.fetch(["celeriac"], "t", 100, 0.5):
        message = decode(delivery.body, beats.app.codec, delivery)
        if message.id == task_id:
            found.append(message.headers["beat"])
    assert found == [{"entry": "tick", "due": None}]
    # unknown names are refused, naming the known ones (main() prints "error: ..." and exits 2)
    refused = CliRunner().invoke(cli, [*APP, "beat", "pause", "nope"])
    assert isinstance(refused.exception, ConfigurationError)
    assert "no periodic task named 'nope' (known: tick)" in str(refused.exception)


def test_worker_with_an_embedded_beat_leads_and_runs_them(beats: Beats, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celeriac",
                "-A",
                "beatapp",
                "worker",
                "-B",
                "-P",
                "threads",
                "-c",
                "2",
            ],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        name, _ = beats.wait_for_leader(timeout=30)
        assert name == f"beat-{worker.pid}@{os.uname().nodename}"
        # the worker takes the runs its beat sends: the queue does not grow
        time.sleep(3)
        assert beats.app.broker.stats("celeriac").total_waiting <= 1, (
            tmp_path / "worker.log"
        ).read_text()
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, (tmp_path / "worker.log").read_text()
    lease = beats.lease()
    assert lease is not None and lease.holder == ""  # given up on the way out
