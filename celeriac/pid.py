"""This process's id without a system call: a fork hook keeps it current.

``os.getpid()`` is a system call on every call; hot paths (each ``delay()``
checks its connection was not inherited from a parent process) read
:func:`this_pid` instead.
"""

from __future__ import annotations

import os

_pid = os.getpid()


def _after_fork_in_child() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)


def this_pid() -> int:
    """The id of the calling process."""
    return _pid


__all__ = ["this_pid"]
