"""celeriac's test kit: real workers inside your own test suite.

* :func:`memory_app` / :func:`use_memory`: an app on a fresh in-memory broker and
  result backend (a new one, or your own app for the duration of a test).
* :class:`InProcessWorker`: the ``threads`` worker pool running in the test's
  process; ``join()`` waits until every queue is empty and every result stored.
* :class:`SentRecorder` / :func:`record_sent`: what was sent (task, args, queue,
  priority, eta) to assert on.
* :class:`PreforkWorker`: a real ``celeriac worker -P prefork`` process on SQLite
  or Redis, for tests that need child processes.
* :mod:`celeriac.testing.plugin`: the same as pytest fixtures (``celeriac_app``,
  ``celeriac_worker``, ``celeriac_sent``, ``celeriac_prefork_worker``), loaded by the
  ``pytest11`` entry point or imported into a conftest.

See docs/testing.md.
"""

from .app import discard_memory, memory_app, memory_url, use_memory
from .prefork import PreforkWorker
from .sent import Sent, SentRecorder, record_sent
from .worker import InProcessWorker, JoinTimeout, start_worker

__all__ = [
    "InProcessWorker",
    "JoinTimeout",
    "PreforkWorker",
    "Sent",
    "SentRecorder",
    "discard_memory",
    "memory_app",
    "memory_url",
    "record_sent",
    "start_worker",
    "use_memory",
]
