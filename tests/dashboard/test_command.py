"""``celeriac -A app dashboard``, the command itself, as a real process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.workers import CELERIAC, WorkerProcess, wait_until

from .conftest import APP


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening_on(port: int) -> set[str]:
    """The IPv4 addresses a socket listens on at ``port`` (Linux /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def _env(tmp_path: Path) -> dict[str, str]:
    shutil.copy(Path(__file__).parents[1] / "control" / f"{APP}.py", tmp_path / f"{APP}.py")
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    return {
        **os.environ,
        "CELERIAC_BROKER_URL": url,
        "CELERIAC_RESULT_BACKEND": url,
        "PYTHONPATH": str(tmp_path),
    }


def _dashboard(tmp_path: Path, *args: str) -> WorkerProcess:
    command = [CELERIAC, "-A", APP, "dashboard", "--db", str(tmp_path / "dash.sqlite3"), *args]
    return WorkerProcess(command, tmp_path, _env(tmp_path), tmp_path / "dashboard.log")


def test_without_auth_it_serves_on_localhost_only_and_says_so(tmp_path: Path) -> None:
    """Expect a warning that it listens on 127.0.0.1 only, a socket on 127.0.0.1 alone,
    /healthcheck and the pages answering, and a clean exit on SIGTERM."""
    port = _free_port()
    process = _dashboard(tmp_path, "--port", str(port))
    try:
        process.wait_for(f"celeriac dashboard on http://127.0.0.1:{port}/")
        assert "listens on 127.0.0.1 only" in process.log
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{base}/healthcheck"), 30, "the healthcheck")
        assert httpx.get(f"{base}/healthcheck", timeout=5).text == "OK"
        page = httpx.get(f"{base}/tasks", timeout=5)
        assert page.status_code == 200 and "<title>Tasks · celeriac</title>" in page.text
        assert _listening_on(port) == {"127.0.0.1"}
        process.signal(signal.SIGTERM)
        # uvicorn shuts down, then re-raises the signal it caught (Python's default: death
        # by SIGTERM) -- within a few seconds either way.
        assert process.process.wait(20) in (0, -signal.SIGTERM)
    finally:
        process.kill()


def test_with_basic_auth_it_listens_on_every_address_and_asks_for_it(tmp_path: Path) -> None:
    port = _free_port()
    process = _dashboard(tmp_path, "--port", str(port), "--basic-auth", "ops:pw")
    try:
        process.wait_for(f"celeriac dashboard on http://0.0.0.0:{port}/")
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{base}/healthcheck"), 30, "the healthcheck")
        assert httpx.get(f"{base}/", timeout=5).status_code == 401
        assert httpx.get(f"{base}/", auth=("ops", "pw"), timeout=5).status_code == 200
        assert _listening_on(port) == {"0.0.0.0"}
        assert "listens on 127.0.0.1 only" not in process.log
    finally:
        process.kill()


def test_a_viewer_may_look_and_not_act(tmp_path: Path) -> None:
    port = _free_port()
    process = _dashboard(
        tmp_path, "--port", str(port), "--basic-auth", "ops:pw", "--viewer-auth", "eyes:pw"
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{base}/healthcheck"), 30, "the healthcheck")
        assert httpx.get(f"{base}/api/workers", auth=("eyes", "pw"), timeout=5).status_code == 200
        revoke = httpx.post(f"{base}/api/task/revoke/some-id", auth=("eyes", "pw"), timeout=5)
        assert revoke.status_code == 403
        operator = httpx.post(f"{base}/api/task/revoke/some-id", auth=("ops", "pw"), timeout=5)
        assert operator.status_code == 200
    finally:
        process.kill()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--port", "many"], "Invalid value for '--port'"),
        (["--basic-auth", "just-a-name"], "--basic-auth wants user:password"),
        (["--viewer-auth", "just-a-name"], "--viewer-auth wants user:password"),
        (["--no-such-option"], "No such option '--no-such-option'"),
    ],
)
def test_a_bad_option_is_a_clear_error(tmp_path: Path, args: list[str], said: str) -> None:
    command = [CELERIAC, "-A", APP, "dashboard", "--db", str(tmp_path / "d.sqlite3"), *args]
    done = subprocess.run(
        command, cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert said in done.stderr
    assert "Traceback" not in done.stderr


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False
