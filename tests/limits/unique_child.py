"""The body of a producer process of test_unique_e2e: threads sending one unique key."""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from typing import Any


def send_same_key(
    app_dir: str,
    url: str,
    queue: str,
    key: str,
    threads: int,
    sends: int,
    go: Any,
    out: Any,
    debounce: float | None = None,
) -> None:
    """Import the test app, wait for ``go``, then ``threads`` threads each send ``sends``
    times with ``key`` (debounced when told); report every returned task id, and when
    the first send started and the last ended."""
    os.environ["CELERIAC_BROKER_URL"] = url
    sys.path.insert(0, app_dir)
    module = importlib.import_module("unique_app")
    app = module.app
    ids: list[str] = []
    lock = threading.Lock()

    def send(n: int) -> None:
        found = [
            module.once.apply_async((n, i), queue=queue, unique_key=key, debounce=debounce).id
            for i in range(sends)
        ]
        with lock:
            ids.extend(found)

    app.broker  # connected before the start  # noqa: B018
    go.wait(30)
    started = time.time()
    workers = [threading.Thread(target=send, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    out.put((ids, started, time.time()))
    app.close()
