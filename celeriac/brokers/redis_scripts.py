"""Lua scripts, batches, and the link that carries them: one round trip each.

Every script in ``lua/`` is sent with ``lua/_lib.lua`` in front of it, so each
is self-contained on the server. Scripts are called with ``EVALSHA``; after a
restart or a failover the server has forgotten them (``NOSCRIPT``), and they
are loaded again and the failed calls repeated, which is safe because a
``NOSCRIPT`` call did nothing.

A :class:`HeldLink` keeps one connection of the pool for its broker or
backend (each belongs to one thread) and writes and reads on it directly: the
hot path (publish, fetch, ack with the result) skips the pool's bookkeeping
on every call, which is a third of a small command's cost in redis-py.
Redis Cluster goes through the cluster client (:class:`PooledLink`), which
routes each command to its slot's node.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import redis

from .redis_client import NoScriptError


@dataclass(frozen=True)
class Script:
    """One Lua script: its full text and the SHA1 the server knows it by."""

    name: str
    text: str
    sha: str


def _read(name: str) -> str:
    return (resources.files("celeriac.brokers") / "lua" / name).read_text(encoding="utf-8")


@cache
def script(name: str) -> Script:
    """The script ``lua/<name>.lua``, with the shared helpers in front."""
    text = _read("_lib.lua") + "\n" + _read(f"{name}.lua")
    return Script(name, text, hashlib.sha1(text.encode()).hexdigest())


def call(client: Any, s: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """Run one script now (one round trip; two more the first time on a server)."""
    try:
        return client.evalsha(s.sha, len(keys), *keys, *args)
    except NoScriptError:
        client.script_load(s.text)
        return client.evalsha(s.sha, len(keys), *keys, *args)


class Batch:
    """Commands sent together in one pipeline (no MULTI): one round trip per server."""

    __slots__ = ("commands",)

    def __init__(self) -> None:
        self.commands: list[tuple[Script | None, tuple[Any, ...]]] = []

    def __len__(self) -> int:
        return len(self.commands)

    def script(self, s: Script, keys: Sequence[Any], args: Sequence[Any]) -> None:
        self.commands.append((s, ("EVALSHA", s.sha, len(keys), *keys, *args)))

    def command(self, *args: Any) -> None:
        self.commands.append((None, args))

    def run(self, client: Any) -> list[Any]:
        """Send every command through a client's pipeline; replies in order, errors raised."""
        return self._complete(
            lambda commands: _send(client, commands), lambda s: client.script_load(s.text)
        )

    def run_on(self, conn: Any) -> list[Any]:
        """The same on one connection, written and read directly."""

        def load(s: Script) -> None:
            conn.send_command("SCRIPT", "LOAD", s.text)
            conn.read_response()

        return self._complete(lambda commands: _replies(conn, commands), load)

    def _complete(
        self, send: Callable[[list[tuple[Any, ...]]], list[Any]], load: Callable[[Script], None]
    ) -> list[Any]:
        results = send([args for _, args in self.commands])
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            for s in {self.commands[i][0] for i in missing}:
                assert s is not None
                load(s)
            again = send([self.commands[i][1] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results


def _send(client: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for args in commands:
        pipe.execute_command(*args)
    return list(pipe.execute(raise_on_error=False))


class PooledLink:
    """Commands through a redis-py client and its pool (Redis Cluster)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def call(self, s: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return call(self.client, s, keys, args)

    def run(self, batch: Batch) -> list[Any]:
        return batch.run(self.client)

    def execute(self, *args: Any, timeout: float | None = None) -> Any:
        return self.client.execute_command(*args)

    def close(self) -> None:
        pass


class HeldLink:
    """One connection held from a pool, written and read directly (see the module docstring)."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._conn: Any = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def _exchange(self, talk: Callable[[Any], Any]) -> Any:
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    return talk(conn)
                except redis.exceptions.TimeoutError:
                    conn.disconnect()
                    raise
                except redis.exceptions.ConnectionError as exc:
                    # a held socket dies with a server restart: reconnect once, as redis-py does
                    conn.disconnect()
                    if attempt == 2 or isinstance(exc, redis.exceptions.AuthenticationError):
                        raise
            raise AssertionError("unreachable")

    def _connection(self) -> Any:
        if self._pid != os.getpid():  # forked: the socket belongs to the parent
            self._conn, self._pid = None, os.getpid()
        if self._conn is None:
            self._conn = self._pool.get_connection()
        return self._conn

    def call(self, s: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        def talk(conn: Any) -> Any:
            try:
                conn.send_command("EVALSHA", s.sha, len(keys), *keys, *args)
                return conn.read_response()
            except NoScriptError:
                conn.send_command("SCRIPT", "LOAD", s.text)
                conn.read_response()
                conn.send_command("EVALSHA", s.sha, len(keys), *keys, *args)
                return conn.read_response()

        return self._exchange(talk)

    def execute(self, *args: Any, timeout: float | None = None) -> Any:
        """One plain command; ``timeout`` bounds the wait for its reply (blocking commands)."""

        def talk(conn: Any) -> Any:
            conn.send_command(*args)
            if timeout is None:
                return conn.read_response()
            return conn.read_response(timeout=timeout)

        return self._exchange(talk)

    def run(self, batch: Batch) -> list[Any]:
        def talk(conn: Any) -> list[Any]:
            return batch.run_on(conn)

        return list(self._exchange(talk))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.disconnect()
                self._pool.release(self._conn)
            self._conn = None


def _replies(conn: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    conn.send_packed_command(conn.pack_commands(commands))
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(conn.read_response())
        except redis.exceptions.ResponseError as exc:
            replies.append(exc)
    return replies


__all__ = ["Batch", "HeldLink", "PooledLink", "Script", "call", "script"]
