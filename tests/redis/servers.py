"""Private Redis servers for tests: standalone, Cluster and Sentinel, from redis-server.

Each server runs in its own temporary directory on a free loopback port, and
is killed when the test (or session) is done. A missing ``redis-server`` skips
the tests locally with the reason, and fails them when ``CI`` is set.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from tests.needs import missing

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
START_TIMEOUT = 20.0


def require_binaries(*names: str) -> None:
    """Skip (locally) or fail (CI) when a Redis binary is missing."""
    found = {"redis-server": REDIS_SERVER, "redis-cli": REDIS_CLI}
    absent = [name for name in names if not found[name]]
    if absent:
        missing(f"{', '.join(absent)} not found on PATH: install Redis 7 to run these tests")


def free_port(cluster_bus: bool = False) -> int:
    """A free loopback port (for Cluster, with port + 10000 free as well)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not cluster_bus:
            return port
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port found")


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``condition`` until true, failing with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class RedisServer:
    """One redis-server process; ``kill`` and ``start`` again keep its directory (and AOF)."""

    def __init__(
        self,
        directory: Path,
        *args: str,
        port: int | None = None,
        sentinel: bool = False,
        tls_ca: Path | None = None,
    ) -> None:
        self.directory = directory
        self.port = port or free_port(cluster_bus="--cluster-enabled" in args)
        self.args = args
        self.sentinel = sentinel
        self.tls_ca = tls_ca  # the server speaks TLS only, with a certificate from this CA
        self.process: subprocess.Popen[bytes] | None = None
        self._clients: dict[int, redis.Redis] = {}
        directory.mkdir(parents=True, exist_ok=True)

    def url(self, db: int = 0) -> str:
        if self.tls_ca is not None:
            return f"rediss://127.0.0.1:{self.port}/{db}?ssl_ca_certs={self.tls_ca}"
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        """A plain client for looking at the server (reconnects after a restart)."""
        if db not in self._clients:
            tls = {} if self.tls_ca is None else {"ssl": True, "ssl_ca_certs": str(self.tls_ca)}
            self._clients[db] = redis.Redis(
                host="127.0.0.1", port=self.port, db=db, socket_timeout=5, **tls
            )
        return self._clients[db]

    def start(self) -> RedisServer:
        assert REDIS_SERVER is not None
        if self.sentinel:
            conf = self.directory / "sentinel.conf"
            command = [REDIS_SERVER, str(conf), "--sentinel", "--port", str(self.port)]
        else:
            command = [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                *self.args,
            ]
        log = open(self.directory / "server.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            start_new_session=True,
        )
        log.close()
        wait_until(self._ready, START_TIMEOUT, f"redis-server on port {self.port}")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited:\n{self.log()}")
        return bool(self.client().ping())

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def kill(self) -> None:
        """kill -9: no shutdown, no final save; what survives is what the AOF had."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None
        for client in self._clients.values():
            client.close()

    def used_memory(self) -> int:
        return int(self.client().info("memory")["used_memory"])


def start_cluster(directory: Path, nodes: int = 3) -> list[RedisServer]:
    """A Redis Cluster of ``nodes`` primaries, every slot covered, state ok."""
    require_binaries("redis-server", "redis-cli")
    servers = [
        RedisServer(
            directory / f"node{i}",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
            "--appendonly",
            "no",
        ).start()
        for i in range(nodes)
    ]
    assert REDIS_CLI is not None
    addresses = [f"127.0.0.1:{s.port}" for s in servers]
    subprocess.run(
        [REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    for server in servers:
        wait_until(
            lambda s=server: b"cluster_state:ok" in s.client().execute_command("CLUSTER", "INFO"),
            START_TIMEOUT,
            f"cluster state ok on {server.port}",
        )
    return servers


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key."""
    cert, key = directory / "redis.crt", directory / "redis.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def start_sentinel(
    directory: Path, master: RedisServer, name: str = "mymaster", down_after_ms: int = 2000
) -> RedisServer:
    """A Sentinel watching ``master`` under ``name``, ready to answer for it."""
    sentinel = RedisServer(directory / "sentinel", sentinel=True)
    (sentinel.directory / "sentinel.conf").write_text(
        f"port {sentinel.port}\nbind 127.0.0.1\ndir {sentinel.directory}\n"
        f"sentinel monitor {name} 127.0.0.1 {master.port} 1\n"
        f"sentinel down-after-milliseconds {name} {down_after_ms}\n"
        f"sentinel failover-timeout {name} 10000\n"
    )
    sentinel.start()
    wait_until(
        lambda: sentinel.client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name),
        START_TIMEOUT,
        "sentinel to know the master",
    )
    return sentinel
