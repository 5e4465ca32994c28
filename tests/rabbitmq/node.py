"""A private RabbitMQ node for tests that kill and restart the server.

It runs as its own Erlang node (``RABBITMQ_NODENAME``) on free loopback ports,
with its data, logs and configuration in a directory of the test's own, so
killing it never touches the shared server on 5672 or its data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pika
import pika.exceptions as pe
import pytest

from tests.needs import missing

# The Debian/Ubuntu package's wrapper switches to the rabbitmq user when run as root,
# who could not write the test's directory; the script behind it runs as we are.
_SCRIPT = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def _server() -> str:
    if _SCRIPT.exists():
        return str(_SCRIPT)
    found = shutil.which("rabbitmq-server")
    if found is None:
        missing("rabbitmq-server is not on PATH: install RabbitMQ to run the restart tests")
    return found


def _thread_states(pgid: int) -> list[str]:
    """The state letter of every thread of every process in process group ``pgid``."""
    states = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.getpgid(int(proc.name)) != pgid:
                continue
            for task in (proc / "task").iterdir():
                with contextlib.suppress(OSError):
                    # "pid (comm) S ...": the state follows the last ")"
                    states.append((task / "stat").read_text().rpartition(")")[2].split()[0])
    return states


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    """``start()``, ``kill()`` (SIGKILL to the whole server), ``start()`` again: same data."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = _free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen[bytes] | None = None
        (directory / "data").mkdir(parents=True)
        (directory / "log").mkdir()
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (directory / "enabled_plugins").write_text("[].\n")
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": f"celeriac_test_{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(_free_port()),
            "RABBITMQ_MNESIA_BASE": str(directory / "data"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(directory / "pid"),
            "RABBITMQ_CONF_ENV_FILE": os.devnull,  # not the shared node's name and flags
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self, timeout: float = 90.0) -> None:
        """Start the node and wait until it accepts an AMQP login."""
        out = (self.dir / "log" / "console.txt").open("ab")
        self.proc = subprocess.Popen(
            [_server()],
            env=self.env,
            cwd=self.dir,  # where Erlang writes crash dumps (MnesiaCore.*, erl_crash.dump)
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"rabbitmq-server exited at start: {self._console()}")
            try:
                params = pika.URLParameters(self.url)
                params.connection_attempts = 1
                params.socket_timeout = 1.0
                pika.BlockingConnection(params).close()
                return
            except (pe.AMQPError, OSError):
                if time.monotonic() > deadline:
                    self.kill()
                    pytest.fail(f"rabbitmq-server not up in {timeout:.0f}s: {self._console()}")
                time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL to the server's process group (the node, its helpers), then reap it."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def freeze(self, timeout: float = 10.0) -> None:
        """SIGSTOP the server's process group and wait until every thread of it stopped
        (a group stop takes effect thread by thread): it then answers nothing."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while not all(state == "T" for state in _thread_states(self.proc.pid)):
            if time.monotonic() > deadline:
                pytest.fail(f"rabbitmq-server not stopped {timeout:.0f}s after SIGSTOP")
            time.sleep(0.01)

    def thaw(self) -> None:
        """SIGCONT: the server runs again, its connections intact."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT)

    def _console(self) -> str:
        return (self.dir / "log" / "console.txt").read_text(errors="replace")[-2000:]
