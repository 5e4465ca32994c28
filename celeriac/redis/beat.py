"""The beat's state on Redis: one hash ``{P}:beat``, changed by scripts with the messages.

Fields: ``lease`` (``"<until>:<holder>"``, the server's clock) and
``last:<entry>`` (the entry's last due time, Unix milliseconds). Recording runs
and storing their messages is one script (``lua/beat_record.lua``), so a run is
either sent and recorded or neither. The script touches the queues' keys and
the beat hash together, which Redis Cluster forbids: there the broker offers no
``beat``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..brokers.capabilities import BeatRun, Lease
from .client import RedisError
from .entries import entry_head
from .scripts import HeldLink, PooledLink, script
from .streams import Translate

_HOLD, _RECORD = script("beat_hold"), script("beat_record")
_LAST = "last:"
RECORD_CHUNK = 1000  # runs per script call


def _lease(raw: Any) -> Lease | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    until, _, holder = text.partition(":")
    return Lease(holder, float(until))


class RedisBeat:
    """The broker's ``beat`` capability: lease and last runs in ``{P}:beat``."""

    def __init__(
        self,
        link: HeldLink | PooledLink,
        client: Any,
        prefix: str,
        base: Callable[[str], str],
        clock: tuple[str, ...],
        error: Translate,
    ) -> None:
        self._link = link
        self._client = client
        self._key = f"{{{prefix}}}:beat"
        self._queues_key = f"{{{prefix}}}:queues"
        self._base = base
        self._clock = clock
        self._error = error

    def _call(self, s: Any, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            return self._link.call(s, keys, args)
        except RedisError as exc:
            raise self._error(exc) from exc

    def hold(self, holder: str, seconds: float) -> Lease:
        lease = _lease(self._call(_HOLD, (self._key,), (holder, seconds, "hold")))
        assert lease is not None  # the script always leaves a lease
        return lease

    def lease(self) -> Lease | None:
        try:
            return _lease(self._client.hget(self._key, "lease"))
        except RedisError as exc:
            raise self._error(exc) from exc

    def release(self, holder: str) -> None:
        self._call(_HOLD, (self._key,), (holder, 0, "release"))

    def record(self, runs: Sequence[BeatRun]) -> list[bool]:
        taken: list[bool] = []
        for i in range(0, len(runs), RECORD_CHUNK):
            taken += self._record(runs[i : i + RECORD_CHUNK])
        return taken

    def _record(self, runs: Sequence[BeatRun]) -> list[bool]:
        index: dict[str, int] = {}
        args: list[Any] = []
        for run in runs:
            e = run.envelope
            if e is None:
                args += (run.entry, run.due_ms, 0, 0, "", "", "")
                continue
            qi = index.setdefault(e.queue, len(index) + 1)
            kind, id_part = entry_head(e.priority, e.id)
            args += (run.entry, run.due_ms, qi, kind, e.eta or "", id_part, e.body)
        keys = [self._key, self._queues_key, *map(self._base, index), *self._clock]
        head = [len(index), *("" for _ in index), *index]
        return [bool(t) for t in self._call(_RECORD, keys, (*head, *args))]

    def last_runs(self) -> dict[str, int]:
        try:
            found = self._client.hgetall(self._key)
        except RedisError as exc:
            raise self._error(exc) from exc
        runs: dict[str, int] = {}
        for field, value in found.items():
            name = field.decode() if isinstance(field, bytes) else str(field)
            if name.startswith(_LAST):
                runs[name[len(_LAST) :]] = int(value)
        return runs

    def forget(self, entry: str) -> None:
        try:
            self._client.hdel(self._key, _LAST + entry)
        except RedisError as exc:
            raise self._error(exc) from exc
