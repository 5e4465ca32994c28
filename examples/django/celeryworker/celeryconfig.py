"""Settings of the standalone worker: a plain module, no Django.

It shares the project's broker (``BROKER_URL``, default the embedded SQLite file
of the project) and keeps its results in a store of its own, which whoever
sends it work reads back (``STANDALONE_RESULT_BACKEND``).
"""

import os
from pathlib import Path

_PROJECT = Path(__file__).resolve().parent.parent

broker_url = os.environ.get("BROKER_URL", f"sqlite:///{_PROJECT / 'broker.sqlite3'}")
result_backend = os.environ.get(
    "STANDALONE_RESULT_BACKEND", f"sqlite:///{_PROJECT / 'standalone-results.sqlite3'}"
)
task_default_queue = "standalone"
worker_prefetch_multiplier = 1
