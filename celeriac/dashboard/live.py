"""Live updates by server-sent events: "something changed, fetch me again", coalesced.

The collector bumps :class:`Changes` after each stored batch. A page that
listens (overview, task list) holds a ``GET /live`` stream; every ``interval``
seconds the stream looks at the version and, when it moved, sends one
``update`` event, however many batches arrived meanwhile. So a page refetches
its live part at most ``1 / interval`` times a second while thousands of tasks
a second flow, and not at all while nothing happens (a comment line keeps the
connection alive). Pages without ``EventSource``, or whose stream fails, fall
back to polling (static/app.js).

A stream ends after ``stream_seconds`` and the browser reconnects (the
``retry`` field): a server shutting down never waits long for open streams.
Events carry the version as their id, so a reconnecting browser (``Last-Event-ID``)
gets an update at once for a change made while it was away.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

KEEPALIVE_SECONDS = 10.0
RECONNECT_MS = 500


class Changes:
    """A version the collector bumps after each batch; streams compare it."""

    def __init__(self, interval: float = 0.5, stream_seconds: float = 15.0) -> None:
        self.interval, self.stream_seconds = interval, stream_seconds
        self.version = 0
        self.closed = threading.Event()
        self._lock = threading.Lock()

    def bump(self, events: Sequence[Any] = ()) -> None:
        """Called by the collector's thread after a batch is stored."""
        with self._lock:
            self.version += 1

    def close(self) -> None:
        """End every open stream at its next look (the server is stopping)."""
        self.closed.set()


def _last_seen(request: Request, current: int) -> int:
    """The version a reconnecting browser saw last (``Last-Event-ID``), else the current."""
    try:
        return int(request.headers.get("last-event-id", current))
    except ValueError:
        return current


async def _events(changes: Changes, seen: int) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    began = quiet = loop.time()
    yield f"retry: {RECONNECT_MS}\nid: {seen}\nevent: hello\ndata: {seen}\n\n"
    while not changes.closed.is_set() and loop.time() - began < changes.stream_seconds:
        await asyncio.sleep(changes.interval)
        version = changes.version
        if version != seen:
            seen, quiet = version, loop.time()
            yield f"id: {version}\nevent: update\ndata: {version}\n\n"
        elif loop.time() - quiet >= KEEPALIVE_SECONDS:
            quiet = loop.time()
            yield ": keepalive\n\n"


async def live_stream(request: Request) -> Response:
    """``GET /live``: ``update`` events, at most one per ``interval`` seconds."""
    changes: Changes = request.app.state.dashboard.changes
    return StreamingResponse(
        _events(changes, _last_seen(request, changes.version)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


ROUTES = [Route("/live", live_stream)]
