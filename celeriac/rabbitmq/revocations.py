"""Revocations on RabbitMQ: records in the state stream (see :mod:`.state`).

``revoke`` appends one record with the ids and until when they are revoked;
every broker object follows the stream, so its fetches flag revoked messages
within milliseconds. ``revoked`` first reads up to a marker it appends, so it
sees every revocation made before it was called.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from .connection import Retrying
from .state import StateLog


class Revocations:
    """Revoke and ask, through one broker object's state log."""

    def __init__(self, state: StateLog, retrying: Retrying) -> None:
        self._state = state
        self._retrying = retrying

    def revoke(self, ids: Sequence[str], ttl: float) -> None:
        if not ids:
            return
        record = {"k": "revoke", "ids": list(ids), "until": time.time() + ttl}
        self._retrying("revocations.revoke", lambda: self._state.append([record]))

    def revoked(self, ids: Sequence[str]) -> set[str]:
        def op() -> set[str]:
            self._state.catch_up()
            now = time.time()
            return {i for i in ids if self._state.revoked_now(i, now)}

        return self._retrying("revocations.revoked", op)


__all__ = ["Revocations"]
