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

A held link can also *post* commands: write them and read their replies
later, before the next exchange on the connection (Redis answers one
connection in order). A worker acks a finished task that way: the ack is on
the wire before the next task starts, but the task does not wait a round trip
for the answer. A posted command that fails is logged; for an ack that means
the message comes again when its lease runs out, as after a crash.

It can also *defer* commands: keep them and write them in front of the
connection's next write (an exchange, a post, or :meth:`HeldLink.flush`). A
worker running a batch of short tasks defers each ack, so the acks of a batch
travel with the fetch of the next one: one write, one read and one wake-up of
the server per batch instead of one more per task. Consecutive deferred
``HDEL`` commands on one hash become one. What its owner defers it also flushes
within a bound (:mod:`celeriac.worker.fairness`): a deferred ack is lost with
its process, and its message then comes again, as after a crash before the ack.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import select
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import hiredis
import redis

from ..brokers.wake import Wake
from ..pid import this_pid
from .client import NoScriptError

logger = logging.getLogger("celeriac.redis")

MAX_OWED = 1000  # posted commands whose replies may wait unread on a connection
MAX_DEFERRED = 256  # deferred commands kept before they are written anyway
_MERGEABLE = frozenset({"HDEL"})  # variadic commands whose consecutive calls on one key merge


@dataclass(frozen=True)
class Script:
    """One Lua script: its full text and the SHA1 the server knows it by."""

    name: str
    text: str
    sha: str


def _read(name: str) -> str:
    return (resources.files("celeriac.redis") / "lua" / name).read_text(encoding="utf-8")


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
        return self.complete(
            lambda commands: _send(client, commands), lambda s: client.script_load(s.text)
        )

    def complete(
        self, send: Callable[[list[tuple[Any, ...]]], list[Any]], load: Callable[[Script], None]
    ) -> list[Any]:
        """Send, load scripts the server forgot and send those again, raise the first error."""
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


_ERRORS: dict[str, type[Exception]] = {
    "NOSCRIPT": NoScriptError,
    "LOADING": redis.exceptions.BusyLoadingError,
    "READONLY": redis.exceptions.ReadOnlyError,
    "MASTERDOWN": redis.exceptions.MasterDownError,
    "NOAUTH": redis.exceptions.AuthenticationError,
    "WRONGPASS": redis.exceptions.AuthenticationError,
    "OOM": redis.exceptions.OutOfMemoryError,
}


_FAILED_OVER = (redis.exceptions.ReadOnlyError, redis.exceptions.MasterDownError)


def _reply_error(message: str) -> Exception:
    code, _, rest = message.partition(" ")
    kind = _ERRORS.get(code)
    return kind(rest) if kind is not None else redis.exceptions.ResponseError(message)


#: what a read waits for besides its socket: a wake, and what to do when it is set
_Waking = tuple[Wake, Callable[[], None]] | None


class HeldLink:
    """One connection held from a pool, written and read directly (see the module docstring).

    redis-py opens the connection (TLS, AUTH, SELECT, Sentinel's master) and
    closes it; in between, commands are packed by hiredis, written to its
    socket and read back with a hiredis reader of our own, which is about
    half the client-side cost of a redis-py call.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._conn: Any = None
        self._sock: Any = None
        self._reader: Any = None
        self._pid = this_pid()
        self._lock = threading.Lock()
        self._owed: list[str] = []  # what each reply still to read answers (posted commands)
        self._deferred: list[tuple[Any, ...]] = []  # commands kept for the next write
        self._deferred_what: list[str] = []  # what each deferred command is, for warnings
        self._id: tuple[Any, int] | None = None  # (socket, the server's CLIENT ID for it)

    def _socket(self) -> Any:
        if self._pid != this_pid():  # forked: the socket belongs to the parent
            self._conn = self._sock = None
            self._owed, self._deferred, self._deferred_what = [], [], []
            self._pid = this_pid()
        if self._conn is None:
            self._conn = self._pool.get_connection()
        sock = getattr(self._conn, "_sock", None)
        if sock is None:
            self._conn.connect()
            sock = self._conn._sock
        if sock is not self._sock:
            self._sock, self._reader = sock, hiredis.Reader(replyError=_reply_error)
        return sock

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
        self._sock = None
        if self._owed:
            logger.warning(
                "%s: the connection closed before Redis answered %d posted command(s) (%s); "
                "an ack among them may not have been applied: its message comes again "
                "when its lease runs out",
                self._where(),
                len(self._owed),
                ", ".join(sorted(set(self._owed))),
            )
            self._owed = []

    def _exchange(
        self, packed: bytes, replies: int, timeout: float | None = None, wake: _Waking = None
    ) -> list[Any]:
        """Write, then read ``replies`` replies; reconnect once if the socket was dead."""
        with self._lock:
            for attempt in (1, 2):
                sock = self._socket()
                try:
                    out = self._talk(sock, packed, replies, timeout, wake)
                    if any(isinstance(r, _FAILED_OVER) for r in out):
                        self._drop()  # a former master: reconnect to the current one next time
                    return out
                except (ConnectionResetError, BrokenPipeError, _Closed) as exc:
                    # a held socket dies with a server restart: reconnect once, as redis-py does
                    self._drop()
                    if attempt == 2:
                        raise redis.exceptions.ConnectionError(f"{self._where()}: {exc}") from exc
                except TimeoutError as exc:
                    self._drop()
                    raise redis.exceptions.TimeoutError(f"{self._where()}: timed out") from exc
                except OSError as exc:
                    self._drop()
                    raise redis.exceptions.ConnectionError(f"{self._where()}: {exc}") from exc
            raise AssertionError("unreachable")

    def _talk(
        self, sock: Any, packed: bytes, replies: int, timeout: float | None, wake: _Waking = None
    ) -> list[Any]:
        if timeout is not None:
            sock.settimeout(timeout)
        sock.sendall(self._take_deferred() + packed)
        owed, self._owed = self._owed, []
        out = self._read(sock, len(owed) + replies, wake)
        for what, reply in zip(owed, out, strict=False):
            if isinstance(reply, Exception):
                logger.warning("%s: a posted %s failed: %s", self._where(), what, reply)
        if timeout is not None:
            sock.settimeout(self._conn.socket_timeout)
        return out[len(owed) :]

    def _read(self, sock: Any, replies: int, wake: _Waking = None) -> list[Any]:
        reader, out = self._reader, []  # type: ignore[var-annotated]
        while len(out) < replies:
            reply = reader.gets()
            if reply is False:
                if wake is not None:
                    wake = self._await(sock, wake)
                chunk = sock.recv(65536)
                if not chunk:
                    raise _Closed("the server closed the connection")
                reader.feed(chunk)
            else:
                out.append(reply)
        return out

    def _await(self, sock: Any, waking: tuple[Wake, Callable[[], None]]) -> _Waking:
        """Wait for the socket or the wake; once woken, call ``unblock`` (which makes the
        server answer now) and wait for the socket only. What ``_read`` waits with next."""
        wake, unblock = waking
        ready, _, _ = select.select([sock, wake], [], [], sock.gettimeout())
        if not ready:
            raise TimeoutError("no reply in time")
        if sock in ready:
            return waking
        try:
            unblock()
        except Exception:
            self._drop()  # replies unread on this socket: it cannot be used again
            raise
        return None

    def post(self, commands: list[tuple[Any, ...]], what: str) -> None:
        """Write commands now and read their replies before the next exchange's
        (see the module docstring); ``what`` names them in a warning if they fail."""
        packed = b"".join(hiredis.pack_command(args) for args in commands)
        with self._lock:
            self._post(packed, [what] * len(commands))

    def _post(self, packed: bytes, what: list[str]) -> None:
        try:
            sock = self._socket()
            sock.sendall(self._take_deferred() + packed)
        except OSError as exc:
            self._drop()
            raise redis.exceptions.ConnectionError(f"{self._where()}: {exc}") from exc
        self._owed.extend(what)
        if len(self._owed) > MAX_OWED:  # a long run of posts alone: read the answers
            try:
                self._talk(sock, b"", 0, None)
            except (OSError, _Closed) as exc:
                self._drop()
                raise redis.exceptions.ConnectionError(f"{self._where()}: {exc}") from exc

    def defer(self, commands: list[tuple[Any, ...]], what: str) -> None:
        """Keep commands to write in front of the next write on this connection (see the
        module docstring); ``what`` names them in a warning if they fail."""
        with self._lock:
            deferred = self._deferred
            for command in commands:
                last = deferred[-1] if deferred else None
                if last is not None and command[0] in _MERGEABLE and last[:2] == command[:2]:
                    deferred[-1] = (*last, *command[2:])
                else:
                    deferred.append(command)
                    self._deferred_what.append(what)
            if len(deferred) >= MAX_DEFERRED:
                self._post(b"", [])

    def flush(self) -> None:
        """Write the deferred commands now (their replies are read as a post's are)."""
        with self._lock:
            if self._deferred:
                self._post(b"", [])

    def _take_deferred(self) -> bytes:
        """The deferred commands packed for a write about to happen; from here on
        their replies are owed."""
        if not self._deferred:
            return b""
        packed = b"".join(hiredis.pack_command(args) for args in self._deferred)
        self._owed.extend(self._deferred_what)
        self._deferred, self._deferred_what = [], []
        return packed

    def _where(self) -> str:
        conn = self._conn
        return f"Redis at {getattr(conn, 'host', '?')}:{getattr(conn, 'port', '?')}"

    def call(self, s: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        packed = hiredis.pack_command(("EVALSHA", s.sha, len(keys), *keys, *args))
        [reply] = self._exchange(packed, 1)
        if isinstance(reply, NoScriptError):
            self.load(s)
            [reply] = self._exchange(packed, 1)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def execute(self, *args: Any, timeout: float | None = None) -> Any:
        """One plain command; ``timeout`` bounds the wait for its reply (blocking commands)."""
        [reply] = self._exchange(hiredis.pack_command(args), 1, timeout)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def send(
        self, commands: list[tuple[Any, ...]], timeout: float | None = None, wake: _Waking = None
    ) -> list[Any]:
        """Commands in one write, their replies (errors as exception objects) in order;
        ``timeout`` bounds the wait for them (a batch that starts with a blocking command).

        ``wake`` is a :class:`~celeriac.brokers.wake.Wake` and what to call when it is set
        while waiting (something that ends the blocking command, such as ``CLIENT UNBLOCK``
        sent on another connection): the replies are then read as usual.
        """
        packed = b"".join(hiredis.pack_command(args) for args in commands)
        return self._exchange(packed, len(commands), timeout, wake)

    def send_packed(self, packed: bytes, replies: int) -> list[Any]:
        """Commands already packed by ``hiredis.pack_command``, and their ``replies``."""
        return self._exchange(packed, replies)

    def load(self, s: Script) -> None:
        self.execute("SCRIPT", "LOAD", s.text)

    def run(self, batch: Batch, timeout: float | None = None, wake: _Waking = None) -> list[Any]:
        return batch.complete(lambda commands: self.send(commands, timeout, wake), self.load)

    def client_id(self) -> int:
        """The server's id of this connection (``CLIENT ID``), asked once per connection."""
        known = self._id
        if known is None or known[0] is not self._sock or self._sock is None:
            client_id = int(self.execute("CLIENT", "ID"))
            known = self._id = (self._sock, client_id)
        return known[1]

    def close(self) -> None:
        with self._lock:
            if self._deferred and self._pid == this_pid():
                try:
                    self._post(b"", [])
                except redis.exceptions.ConnectionError as exc:
                    logger.warning("%s: deferred commands not written: %s", self._where(), exc)
            if self._owed and self._sock is not None and self._pid == this_pid():
                # Read what posted commands answered first: closing a socket with
                # replies unread resets the connection, and Redis may drop them.
                with contextlib.suppress(OSError, _Closed):
                    self._talk(self._sock, b"", 0, None)
            if self._conn is not None and self._pid == this_pid():
                self._conn.disconnect()
                self._pool.release(self._conn)
            self._conn = self._sock = None


class _Closed(ConnectionError):
    """The server closed the connection."""


__all__ = ["Batch", "HeldLink", "PooledLink", "Script", "call", "script"]
