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
import weakref


class Wake:
    """A flag that can be waited on, set from a signal handler or another thread.

    Its pipe closes when the object is collected, not before: a descriptor closed
    while another thread or a handler could still write to it might by then
    belong to another file.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._set = False
        weakref.finalize(self, _close, self._read, self._write)

    def set(self) -> None:
        """Set the flag and wake whoever waits; signal-safe, never blocks."""
        self._set = True
        with contextlib.suppress(OSError):  # the pipe is full: already woken
            os.write(self._write, b"\0")

    def is_set(self) -> bool:
        return self._set

    def fileno(self) -> int:
        """The descriptor that becomes readable once the flag is set (for ``select``)."""
        return self._read

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (None: for ever) for the flag; whether it is set."""
        if not self._set and (timeout is None or timeout > 0):
            select.select([self._read], [], [], timeout)
        return self._set

    def clear(self) -> None:
        """Unset the flag (a :class:`Wake` used as a repeating doorbell)."""
        self._set = False
        with contextlib.suppress(OSError):
            while os.read(self._read, 512):
                pass


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


__all__ = ["Wake"]
