"""The dashboard beyond loopback needs auth (or a flag that says it is unsafe), and every
response carries security headers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from celeriac import Celeriac
from celeriac.cli.dashboard import bind_host, is_loopback
from celeriac.dashboard import create_app
from celeriac.dashboard.headers import content_security_policy
from tests.e2e.workers import CELERIAC, wait_until

from .conftest import APP
from .test_command import _answers, _dashboard, _env, _free_port, _listening_on


@pytest.mark.parametrize("address", ["0.0.0.0", "192.0.2.7", "::", "dashboard.example"])
def test_an_address_beyond_loopback_without_auth_is_refused(tmp_path: Path, address: str) -> None:
    command = [CELERIAC, "-A", APP, "dashboard", "--db", str(tmp_path / "d.sqlite3")]
    done = subprocess.run(
        [*command, "--address", address],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "--unsafe-no-auth" in done.stderr and "--basic-auth" in done.stderr
    assert "Traceback" not in done.stderr and "celeriac dashboard on" not in done.stderr


def test_unsafe_no_auth_serves_beyond_loopback_with_a_warning(tmp_path: Path) -> None:
    port = _free_port()
    process = _dashboard(tmp_path, "--port", str(port), "--address", "0.0.0.0", "--unsafe-no-auth")
    try:
        process.wait_for(f"celeriac dashboard on http://0.0.0.0:{port}/")
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthcheck"), 30, "the dashboard")
        assert "UNSAFE" in process.log and "without auth" in process.log
        assert _listening_on(port) == {"0.0.0.0"}
    finally:
        process.kill()


def test_which_addresses_are_loopback() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.5.0.1", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.org"]))
    assert bind_host(None, protected=False, unsafe_no_auth=False) == "127.0.0.1"
    assert bind_host(None, protected=True, unsafe_no_auth=False) == "0.0.0.0"
    assert bind_host("10.0.0.1", protected=True, unsafe_no_auth=False) == "10.0.0.1"


def test_every_response_carries_security_headers(cel: Celeriac, tmp_path: Path) -> None:
    web = create_app(cel, store=tmp_path / "dash.sqlite3", collect=False)
    client = TestClient(web)
    for path in ("/", "/tasks", "/api/workers", "/static/app.js", "/no-such-page"):
        headers = client.get(path).headers
        assert headers["x-frame-options"] == "DENY", path
        assert headers["x-content-type-options"] == "nosniff", path
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy, path


def test_the_policy_allows_the_templates_inline_handlers_by_hash_only() -> None:
    policy = content_security_policy()
    scripts = next(p for p in policy.split("; ") if p.startswith("script-src"))
    assert "'unsafe-inline'" not in policy and "'sha256-" in scripts
