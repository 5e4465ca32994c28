"""Fresh RabbitMQ virtual hosts for tests, made a few at a time.

Each ``rabbitmqctl`` call starts an Erlang VM and takes one to several seconds, and a
virtual host needs two (``add_vhost``, ``set_permissions``) and a third to go. Tests that
need one of their own (their queues, streams, beat state) borrow it from the session's
:class:`Vhosts` (the ``rabbitmq_vhosts`` fixture of ``tests/conftest.py``): it makes them a
batch at a time with one ``rabbitmqctl import_definitions``, lends each out once, and
deletes those whose test ended a few at a time with one ``rabbitmqctl eval`` in the
background. A virtual host holds files open in the server (message stores, stream
segments) for as long as it exists, and a server started with the usual limit of 1,024
open files stops working when it runs out: so no more than a handful live at once.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from tests.needs import missing, need_module

AMQP_HOST = os.environ.get("CELERIAC_TEST_AMQP_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("CELERIAC_TEST_AMQP_PORT", "5672"))
# Virtual hosts made together when the pool is empty: as many as were made so far (a
# session that uses few pays for few), from FIRST_BATCH up to MAX_BATCH.
FIRST_BATCH, MAX_BATCH = 2, 4
DELETE_BATCH = 2  # virtual hosts whose test ended, deleted together
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


def _make(names: list[str]) -> None:
    """Make virtual hosts on which ``guest`` may do anything: one ``import_definitions``
    (asynchronous on recent RabbitMQ: done once ``guest`` can open each), or, where the
    command is missing, two calls per host."""
    permit = {"configure": ".*", "write": ".*", "read": ".*"}
    definitions = {
        "vhosts": [{"name": name} for name in names],
        "permissions": [{"user": "guest", "vhost": name, **permit} for name in names],
    }
    done = subprocess.run(
        ["rabbitmqctl", "import_definitions", "--format", "json"],
        input=json.dumps(definitions).encode(),
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        _rabbitmqctl_all([["add_vhost", name] for name in names])
        _rabbitmqctl_all(
            [["set_permissions", "-p", name, "guest", *permit.values()] for name in names]
        )
        return
    pika = need_module("pika", "rabbitmq")
    for name in names:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                pika.BlockingConnection(pika.URLParameters(amqp_url(name))).close()
                break
            except pika.exceptions.AMQPError as exc:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"virtual host {name} not usable {TIMEOUT}s after its import: {exc}"
                    )
                time.sleep(0.05)


def _deletion(names: list[str]) -> list[str]:
    """The command deleting virtual hosts in one ``rabbitmqctl eval`` (one Erlang VM, where
    ``delete_vhost`` starts one per host)."""
    hosts = ", ".join(f'<<"{name}">>' for name in names)  # names are [a-z0-9-]: no quoting
    expression = f'[rabbit_vhost:delete(V, <<"celeriac tests">>) || V <- [{hosts}]].'
    return ["rabbitmqctl", "eval", expression]


def _delete_in_background(names: list[str]) -> subprocess.Popen[bytes]:
    """Start deleting virtual hosts; whatever this leaves, the session's end deletes."""
    return subprocess.Popen(_deletion(names), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _delete(names: list[str]) -> None:
    """Delete virtual hosts in one call; where that fails, the ones left one by one."""
    done = subprocess.run(_deletion(names), capture_output=True, timeout=TIMEOUT, check=False)
    if done.returncode == 0:
        return
    listed = subprocess.run(
        ["rabbitmqctl", "list_vhosts"], capture_output=True, timeout=TIMEOUT, check=False
    )
    left = set(listed.stdout.decode(errors="replace").split()) & set(names)
    _rabbitmqctl_all([["delete_vhost", name] for name in sorted(left)])


class Vhosts:
    """Virtual hosts on the local RabbitMQ, each handed out once (see the module docstring)."""

    def __init__(self, prefix: str = "celeriac-t") -> None:
        self.prefix = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._ready: list[str] = []
        self._made: list[str] = []  # made and not deleted yet
        self._ended: list[str] = []  # their test ended: to delete
        self._deleting: list[subprocess.Popen[bytes]] = []

    def lend(self, request: pytest.FixtureRequest) -> str:
        """A virtual host for the requesting test, deleted soon after the test ends."""
        name = self.take()
        request.addfinalizer(lambda: self._end(name))
        return name

    def _end(self, name: str) -> None:
        self._ended.append(name)
        if len(self._ended) >= DELETE_BATCH:
            self._deleting = [p for p in self._deleting if p.poll() is None]
            self._deleting.append(_delete_in_background(self._ended))
            self._ended = []  # still in _made: the end of the session deletes what is left

    def take(self) -> str:
        """A virtual host no test used, on which ``guest`` may do anything."""
        if not self._ready:
            self.check_server()
            batch = min(MAX_BATCH, max(FIRST_BATCH, len(self._made)))
            names = [f"{self.prefix}-{len(self._made) + i}" for i in range(batch)]
            self._made.extend(names)  # deleted at the end even if a call below fails
            _make(names)
            self._ready.extend(names)
        return self._ready.pop(0)

    def close(self) -> None:
        """Delete every virtual host made, with everything in it."""
        for process in self._deleting:
            try:
                process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
        self._deleting.clear()
        if self._made:
            _delete(self._made)
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
