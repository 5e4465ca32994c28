"""What a worker says about itself, asked once per few seconds however many pages refresh.

A worker's page refreshes every second in every browser showing it; each
refresh asking the worker directly would be a broadcast per query per viewer.
:class:`WorkerInspector` keeps each worker's replies for ``ttl`` seconds and
lets one caller at a time refresh them (the others wait for that answer); an
action on a worker (pool, consumers, limits) forgets its replies, so the next
view shows the change.

The queries of one refresh (stats, active, reserved, queues, configuration,
registered tasks) are sent at once, each its own broadcast, and their replies
awaited together: a refresh costs about one round trip, and a silent worker
one timeout, not one per query.

The worker's configuration is shown redacted: passwords in URLs, and the
values of settings whose name says they hold a secret: a word ``password``,
``secret``, ``token``, ``credentials``... (``database_password``,
``aws_secret_access_key``), or a ``key`` of a secret kind (``api_key``,
``secret_key``, ``private_key``). ``task_default_routing_key`` or
``result_key_prefix`` name no secret and are shown.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..urls import HIDDEN as URL_HIDDEN
from ..urls import is_secret_name, redact

if TYPE_CHECKING:
    from ..app import Celeriac

INSPECT_TIMEOUT = 1.0
LIMITS = ("rate_limit", "soft_time_limit", "time_limit")
QUERIES = ("stats", "active", "reserved", "active_queues", "conf")
HIDDEN = "********"
_DESCRIBED = re.compile(r"^(\S+)(?: \[(.*)\])?$")


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    details: dict[str, Any] | None = None
    at: float = float("-inf")


class WorkerInspector:
    """Per-worker inspect replies, cached for ``ttl`` seconds."""

    def __init__(
        self,
        app: Celeriac,
        ttl: float = 3.0,
        timeout: float = INSPECT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.ttl, self.timeout, self.clock = app, ttl, timeout, clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.asked = 0  # rounds of queries sent, for tests and the curious

    def _entry(self, hostname: str) -> _Entry:
        with self._lock:
            return self._entries.setdefault(hostname, _Entry())

    def details(self, hostname: str) -> dict[str, Any]:
        """The worker's replies, at most ``ttl`` seconds old."""
        entry = self._entry(hostname)
        with entry.lock:  # one refresh per worker at a time; the others reuse it
            if entry.details is None or self.clock() - entry.at >= self.ttl:
                entry.details = self._ask(hostname)
                entry.at = self.clock()
            return entry.details

    def forget(self, hostname: str | None = None) -> None:
        """Drop cached replies (one worker's, or all) after an action changed them."""
        with self._lock:
            if hostname is None:
                self._entries.clear()
            else:
                self._entries.pop(hostname, None)

    def _ask(self, hostname: str) -> dict[str, Any]:
        """Every query at once, one broadcast each, awaited together (about one round trip)."""
        self.asked += 1
        details: dict[str, Any] = {"asked_at": time.time()}
        with ThreadPoolExecutor(len(QUERIES) + 1, thread_name_prefix="inspect") as pool:
            asked = {q: pool.submit(self._query, hostname, q) for q in QUERIES}
            registered = pool.submit(self._registered, hostname)
            for query, reply in asked.items():
                details[query] = reply.result()
            details["registered"] = registered_with_limits(registered.result())
        details["answered"] = details["stats"] is not None
        details["conf"] = redact_conf(details["conf"])
        return details

    def _query(self, hostname: str, query: str) -> Any:
        inspect = self.app.control.inspect([hostname], timeout=self.timeout)
        return (inspect.query(query) or {}).get(hostname)

    def _registered(self, hostname: str) -> Any:
        replies = self.app.control.broadcast(
            "registered",
            {"taskinfoitems": list(LIMITS)},
            [hostname],
            reply=True,
            timeout=self.timeout,
        )
        return next((r[hostname] for r in replies if hostname in r), None)


def registered_with_limits(described: Any) -> list[dict[str, Any]] | None:
    """``["name [rate_limit=10/m time_limit=5]", ...]`` as rows with the limits."""
    if not isinstance(described, list):
        return None
    rows = []
    for line in described:
        match = _DESCRIBED.match(str(line))
        if match is None:
            continue
        row: dict[str, Any] = {"name": match.group(1), **dict.fromkeys(LIMITS)}
        for pair in (match.group(2) or "").split():
            key, _, value = pair.partition("=")
            if key in LIMITS:
                row[key] = value
        rows.append(row)
    return rows


def secret_name(name: str) -> bool:
    """Whether a setting named ``name`` holds a secret (the one rule: ``celeriac.urls``)."""
    return is_secret_name(name)


def redact_value(name: str, value: Any) -> Any:
    """``value`` with secrets hidden: all of it under a secret's name, else URL secrets."""
    if secret_name(name) and value not in (None, "", False):
        return HIDDEN
    if isinstance(value, str):
        return redact(value).replace(URL_HIDDEN, HIDDEN) if "://" in value else value
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(name, v) for v in value]
    return value


def redact_conf(conf: Any) -> dict[str, Any] | None:
    """A worker's configuration, secrets hidden, keys sorted."""
    if not isinstance(conf, dict):
        return None
    return {str(k): redact_value(str(k), conf[k]) for k in sorted(conf, key=str)}
