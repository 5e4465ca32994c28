"""The event: what a worker or producer tells the cluster, and its wire form.

Events travel as JSON objects on the broker's bounded stream ``"events"``,
packed many to a stream item and compressed (:func:`decode_item` reads them). The
field names are Celery's (``uuid``, ``hostname``, ``timestamp``, ``runtime``,
``freq``, ``sw_ver``...) so tools written for Celery's events read them the same.
JSON is used whatever the task serializer is: events are for people and tools,
so a value JSON cannot carry is shown by its ``repr``.

Arguments, keyword arguments, results, exceptions and tracebacks travel whole
up to ``event_args_max_size`` bytes (of JSON, or of text) each; a larger one is
replaced by its start followed by ``...`` and its name is listed in ``truncated``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from .. import states
from ..exceptions import CapabilityUnavailable

#: What reading events or remote control raises on a broker without streams (the
#: name events and control have always raised; the error is the general one).
StreamsUnavailable = CapabilityUnavailable


TASK_SENT = "task-sent"
TASK_RECEIVED = "task-received"
TASK_STARTED = "task-started"
TASK_SUCCEEDED = "task-succeeded"
TASK_FAILED = "task-failed"
TASK_RETRIED = "task-retried"
TASK_REVOKED = "task-revoked"
TASK_REJECTED = "task-rejected"
#: ``self.update_state(state=..., meta=...)`` in a running task: ``state`` is the task's
#: own name for it (PROGRESS...), ``result`` the meta.
TASK_PROGRESS = "task-progress"
#: A task put back in the broker's delayed set without running (a rate limit's slot):
#: no state of its own; ``eta`` says until when and ``reason`` why.
TASK_DELAYED = "task-delayed"
WORKER_ONLINE = "worker-online"
WORKER_HEARTBEAT = "worker-heartbeat"
WORKER_OFFLINE = "worker-offline"

#: The task state each task event means (``REJECTED`` is not a result state).
TASK_EVENT_STATES: dict[str, str] = {
    TASK_SENT: states.PENDING,
    TASK_RECEIVED: states.RECEIVED,
    TASK_STARTED: states.STARTED,
    TASK_SUCCEEDED: states.SUCCESS,
    TASK_FAILED: states.FAILURE,
    TASK_RETRIED: states.RETRY,
    TASK_REVOKED: states.REVOKED,
    TASK_REJECTED: "REJECTED",
    TASK_PROGRESS: "PROGRESS",
}
TASK_EVENTS = tuple(TASK_EVENT_STATES)
WORKER_EVENTS = (WORKER_ONLINE, WORKER_HEARTBEAT, WORKER_OFFLINE)
EVENT_TYPES = (*TASK_EVENTS, TASK_DELAYED, *WORKER_EVENTS)

# Wire name -> attribute of Event, where they differ.
_RENAMED = {"uuid": "task_id"}
_ATTRIBUTE_TO_WIRE = {attr: wire for wire, attr in _RENAMED.items()}
_LARGE_FIELDS = ("args", "kwargs", "result", "exception", "traceback")
_DUMP_OPTIONS = orjson.OPT_NON_STR_KEYS


def show(value: Any) -> Any:
    """What JSON cannot carry is shown as its repr."""
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def _plain(value: Any, depth: int = 0) -> Any:
    """A copy orjson can write: ints beyond 64 bits as text, deep or cyclic nesting cut."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -(2**63) <= value < 2**64 else str(value)
    if depth > 50:
        return repr(value)[:100]
    if isinstance(value, dict):
        return {
            k if isinstance(k, (str, int, float, bool)) else repr(k): _plain(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v, depth + 1) for v in value]
    return value


def to_json(value: Any) -> bytes:
    """JSON for people and tools: what JSON cannot carry is shown as its repr, an int
    beyond 64 bits as text, and nesting deeper than JSON allows is cut."""
    try:
        return orjson.dumps(value, default=show, option=_DUMP_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):  # rare: a huge int, a cycle
        return orjson.dumps(_plain(value), default=show, option=_DUMP_OPTIONS)


def encode_event(fields: dict[str, Any], max_size: int) -> bytes:
    """The wire form of one event, its large fields cut beyond ``max_size`` bytes."""
    data = to_json(fields)
    if len(data) <= max_size:
        return data  # the usual case: one dumps and done
    truncated = []
    for name in _LARGE_FIELDS:
        if name not in fields:
            continue
        value = fields[name]
        if isinstance(value, str):  # a traceback: cut the text itself
            if len(value) > max_size:
                fields = {**fields, name: value[:max_size] + "..."}
                truncated.append(name)
            continue
        text = to_json(value)
        if len(text) > max_size:
            fields = {**fields, name: text[:max_size].decode(errors="ignore") + "..."}
            truncated.append(name)
    if truncated:
        fields["truncated"] = truncated
    return to_json(fields)


@dataclass(frozen=True, slots=True)
class Event:
    """One event, decoded. Fields a given event type does not carry are None."""

    type: str
    timestamp: float
    hostname: str | None = None
    pid: int | None = None
    position: str = ""  # where it sits in the stream: resume after it
    # -- task events
    task_id: str | None = None  # "uuid" on the wire, as in Celery
    name: str | None = None
    queue: str | None = None
    priority: int | None = None
    retries: int | None = None
    runtime: float | None = None
    args: Any = None
    kwargs: Any = None
    result: Any = None
    exception: str | None = None
    traceback: str | None = None
    eta: float | None = None
    expires: float | None = None
    parent_id: str | None = None
    root_id: str | None = None
    truncated: tuple[str, ...] = ()  # names of the fields cut to event_args_max_size
    # -- worker events
    freq: float | None = None
    active: int | None = None
    processed: int | None = None
    loadavg: tuple[float, ...] | None = None
    pool_size: int | None = None
    queues: tuple[str, ...] | None = None
    sw_ident: str | None = None
    sw_ver: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # any other field

    @property
    def is_task(self) -> bool:
        return self.type.startswith("task-")

    @property
    def is_worker(self) -> bool:
        return self.type.startswith("worker-")

    @property
    def state(self) -> str | None:
        """The task state this event means (SUCCESS for task-succeeded...), else None;
        for task-progress, the state the task named."""
        if self.type == TASK_PROGRESS:
            return str(self.extra.get("state") or TASK_EVENT_STATES[TASK_PROGRESS])
        return TASK_EVENT_STATES.get(self.type)

    @classmethod
    def from_dict(cls, data: dict[str, Any], position: str = "") -> Event:
        """Build from a wire dict; unknown fields land in ``extra``."""
        known: dict[str, Any] = {"position": position}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            attr = _RENAMED.get(key, key)
            if attr in _FIELD_NAMES:
                known[attr] = value
            else:
                extra[key] = value
        for attr in ("truncated", "queues", "loadavg"):
            if isinstance(known.get(attr), list):
                known[attr] = tuple(known[attr])
        known.setdefault("type", "unknown")
        known.setdefault("timestamp", 0.0)
        if known["type"] == TASK_SENT and "root_id" not in known:
            known["root_id"] = known.get("task_id")  # left out when the task is its own root
        return cls(**known, extra=extra)

    @classmethod
    def decode(cls, data: bytes, position: str = "") -> Event:
        """Read one single-event stream item (see :func:`decode_item` for packs)."""
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            return cls._unknown(data, position)
        return cls.from_dict(parsed, position)

    @classmethod
    def _unknown(cls, data: bytes, position: str) -> Event:
        """A malformed item becomes an ``unknown`` event, not an error."""
        return cls(
            "unknown", 0.0, position=position, extra={"raw": data[:200].decode(errors="replace")}
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire dict (Celery's names), without empty fields; plus ``position``."""
        out: dict[str, Any] = {}
        for attr in _FIELD_NAMES:
            value = getattr(self, attr)
            if value is None or value == () or (attr == "position" and not value):
                continue
            out[_ATTRIBUTE_TO_WIRE.get(attr, attr)] = value
        out.update(self.extra)
        return out


_FIELD_NAMES = tuple(name for name in Event.__dataclass_fields__ if name != "extra")


#: What the later events of a task's group take from its first when they leave it out.
GROUP_SHARED = ("uuid", "name", "hostname", "pid", "queue", "retries")
_COMPRESSED = b"x"  # the first byte of a zlib stream; an item of JSON starts with { or [


def decode_item(position: str, data: bytes) -> list[Event]:
    """The events of one stream item: one event, or a pack (a JSON array, compressed).

    A pack's entries are events, or a task's group of events (an array) whose later
    events take the :data:`GROUP_SHARED` fields they leave out from the first. The k-th
    event of a pack at ``P``, groups counted event by event, has the position ``"P:k"``;
    a lone event, ``"P"``.
    """
    if data.startswith(_COMPRESSED):
        try:
            data = zlib.decompress(data)
        except zlib.error:
            return [Event._unknown(data, position)]
    if not data.startswith(b"["):
        return [Event.decode(data, position)]
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return [Event._unknown(data, position)]
    events: list[Event] = []
    for entry in parsed:
        for fields in _group(entry) if isinstance(entry, list) else (entry,):
            where = f"{position}:{len(events)}"
            if isinstance(fields, dict):
                events.append(Event.from_dict(fields, where))
            else:
                events.append(Event._unknown(orjson.dumps(fields), where))
    return events


def _group(entry: list[Any]) -> list[Any]:
    """A task's group of events, each with the shared fields filled in from the first."""
    first = entry[0] if entry else None
    if not isinstance(first, dict):
        return entry
    shared = {name: first[name] for name in GROUP_SHARED if name in first}
    return [first] + [
        {**shared, **later} if isinstance(later, dict) else later for later in entry[1:]
    ]
