"""Fresh RabbitMQ virtual hosts for tests, made a few at a time.

Each ``rabbitmqctl`` call starts an Erlang VM and takes one to several seconds, and a
virtual host needs two (``add_vhost``, ``set_permissions``) and a third to go. Tests that
need one of their own (their queues, streams, beat state) take it from the session's
:class:`Vhosts` (the ``rabbitmq_vhost`` fixture of ``tests/conftest.py``): it makes them a
batch at a time, the calls of a batch in parallel, hands each out once, and deletes them
all, in parallel, when the session ends.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid

import pytest

from tests.needs import missing

AMQP_HOST = os.environ.get("CELERIAC_TEST_AMQP_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("CELERIAC_TEST_AMQP_PORT", "5672"))
# Virtual hosts made together when the pool is empty: as many as were made so far (a
# session that uses few pays for few), from FIRST_BATCH up to MAX_BATCH.
FIRST_BATCH, MAX_BATCH = 2, 8
TIMEOUT = 60.0  # seconds for one batch of rabbitmqctl calls


def _rabbitmqctl_all(calls: list[list[str]]) -> None:
    """Run ``rabbitmqctl`` once per argument list, all at once; fail naming any that failed."""
    started = [
        (
            args,
            subprocess.Popen(
                ["rabbitmqctl", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            ),
        )
        for args in calls
    ]
    failed = []
    for args, process in started:
        try:
            output, _ = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        if process.returncode != 0:
            failed.append(f"rabbitmqctl {' '.join(args)}: {output.decode(errors='replace')}")
    if failed:
        pytest.fail("\n".join(failed))


class Vhosts:
    """Virtual hosts on the local RabbitMQ, each handed out once (see the module docstring)."""

    def __init__(self, prefix: str = "celeriac-t") -> None:
        self.prefix = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._ready: list[str] = []
        self._made: list[str] = []

    def take(self) -> str:
        """A virtual host no test used, on which ``guest`` may do anything."""
        if not self._ready:
            self.check_server()
            batch = min(MAX_BATCH, max(FIRST_BATCH, len(self._made)))
            names = [f"{self.prefix}-{len(self._made) + i}" for i in range(batch)]
            self._made.extend(names)  # deleted at the end even if a call below fails
            _rabbitmqctl_all([["add_vhost", name] for name in names])
            permit = [".*", ".*", ".*"]
            _rabbitmqctl_all([["set_permissions", "-p", name, "guest", *permit] for name in names])
            self._ready.extend(names)
        return self._ready.pop(0)

    def close(self) -> None:
        """Delete every virtual host made, with everything in it."""
        if self._made:
            _rabbitmqctl_all([["delete_vhost", name] for name in self._made])
            self._made.clear()
            self._ready.clear()

    @staticmethod
    def check_server() -> None:
        """A reachable RabbitMQ and ``rabbitmqctl``, or :func:`tests.needs.missing`."""
        try:
            socket.create_connection((AMQP_HOST, AMQP_PORT), timeout=2).close()
        except OSError as exc:
            missing(f"no RabbitMQ at {AMQP_HOST}:{AMQP_PORT} ({exc})")
        if shutil.which("rabbitmqctl") is None:
            missing("rabbitmqctl is not on PATH: the tests create virtual hosts with it")


def amqp_url(vhost: str) -> str:
    """The guest URL of a virtual host on the local RabbitMQ."""
    return f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{vhost}"
