"""Ending a wait early: what a stopping worker hands to a fetch that is waiting for work.

A consumer that is idle waits inside ``Broker.fetch`` for up to its fetch
timeout. When the worker is told to stop, that wait is all that stands between
SIGTERM and exit, so the consumer passes the fetch a :class:`Wake` and sets it
on stop: each broker waits on its file descriptor (SQLite), between its slices
(RabbitMQ) or unblocks its server-side wait (Redis), and returns what it has.

Setting it writes a byte to a pipe, so it is safe from a signal handler (which
runs in whatever the main thread was doing, holding whatever lock it held)
and from any thread. Once set it stays set: a wake is made for one stop.
"""

from __future__ import annotations

import contextlib
import os
import select


class Wake:
    """A flag that can be waited on, set from a signal handler or another thread."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._set = False

    def set(self) -> None:
        """Set the flag and wake whoever waits; signal-safe, never blocks."""
        self._set = True
        if self._write < 0:  # closed
            return
        with contextlib.suppress(OSError):  # the pipe is full: already woken
            os.write(self._write, b"\0")

    def is_set(self) -> bool:
        return self._set

    def fileno(self) -> int:
        """The descriptor that becomes readable once the flag is set (for ``select``)."""
        return self._read

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the flag; whether it is set."""
        if not self._set and timeout > 0 and self._read >= 0:
            select.select([self._read], [], [], timeout)
        return self._set

    def clear(self) -> None:
        """Unset the flag (a :class:`Wake` used as a repeating doorbell)."""
        self._set = False
        if self._read < 0:
            return
        try:
            while os.read(self._read, 512):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        # -1 first: a late set() must not write to a descriptor reused by another file
        fds, self._read, self._write = (self._read, self._write), -1, -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)


__all__ = ["Wake"]
