"""The Redis entries of the broker contract and result backend suites' registries
(tests/contract/conftest.py, tests/backends/conftest.py).

One private redis-server per test session, started on first use and killed
when the session ends; each test gets its own ``global_keyprefix``, so its
keys are its own.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from .servers import RedisServer, require_binaries

_server: RedisServer | None = None


def _session_server(request: pytest.FixtureRequest) -> RedisServer:
    global _server
    require_binaries("redis-server")
    if _server is None or _server.process is None or _server.process.poll() is not None:
        directory = Path(tempfile.mkdtemp(prefix="celeriac-contract-redis-"))
        _server = RedisServer(directory, "--appendonly", "no").start()
        request.config.add_cleanup(lambda: shutil.rmtree(directory, ignore_errors=True))
        request.config.add_cleanup(_server.kill)
    return _server


def redis_env(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A Redis broker isolated by a key prefix of its own."""
    from ..contract.env import BrokerEnv

    server = _session_server(request)
    return BrokerEnv(
        "celeriac.redis.broker:RedisBroker",
        server.url(0),
        options={"global_keyprefix": f"contract-{uuid.uuid4().hex[:12]}"},
    )


def redis_backend_env(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A Redis result backend isolated by a key prefix of its own."""
    from ..backends.env import BackendEnv

    server = _session_server(request)
    return BackendEnv(
        "celeriac.redis.backend:RedisBackend",
        server.url(1),
        options={"global_keyprefix": f"backend-{uuid.uuid4().hex[:12]}"},
    )
