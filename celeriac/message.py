"""The task message: a frozen, versioned envelope and its wire format.

What the broker stores is an :class:`Envelope` (id, queue, priority, when it is
due, and opaque bytes); what the worker runs is the :class:`Message` those bytes
decode to. Keeping the two apart lets a broker move, lease and dead-letter
messages it cannot read, and lets a worker refuse bytes it cannot decode.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .exceptions import ConfigurationError, MessageDecodeError, SerializationError
from .serialization import Codec, from_wire, to_wire

PROTOCOL_VERSION = 1
MIN_PRIORITY, MAX_PRIORITY = 0, 9


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a broker stores: routing facts plus the encoded message body.

    Every message passes here on its way to a broker, so this is where its priority
    is checked, once, for every broker: 0 (lowest) to 9 (highest).
    """

    id: str
    queue: str
    priority: int
    body: bytes
    eta: float | None = None  # unix seconds; None means now
    sent_at: float | None = None  # set when the body leaves it out: the broker keeps it

    def __post_init__(self) -> None:
        check_priority(self.priority)


@dataclass(slots=True)
class Delivery:
    """An envelope as handed to one consumer, under a lease until acked or released."""

    id: str
    queue: str
    priority: int
    body: bytes
    tag: str  # the broker's receipt: what ack/release use to find it
    deliveries: int = 1  # how many times it has been handed out, this time included
    revoked: bool = False  # the broker already knows the task was revoked
    sent_at: float | None = None  # kept by the broker beside the body (None: in the body)


@dataclass(frozen=True, slots=True)
class Message:
    """A task invocation, as producers send it and workers run it."""

    id: str
    task: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = "celeriac"
    priority: int = 5
    eta: float | None = None
    expires: float | None = None  # unix seconds
    retries: int = 0
    parent_id: str | None = None
    root_id: str | None = None
    group_id: str | None = None
    group_index: int | None = None
    callbacks: tuple[dict[str, Any], ...] = ()  # link: signatures run with the result
    errbacks: tuple[dict[str, Any], ...] = ()  # link_error: signatures run on failure
    chord: dict[str, Any] | None = None  # {"callback": sig, "size": n} for a chord header
    ignore_result: bool = False
    sent_at: float = 0.0
    headers: dict[str, Any] = field(default_factory=dict)  # middleware may extend these

    def envelope(self, codec: Codec, sent_apart: bool = False) -> Envelope:
        """Encode for a broker; a value the serializer cannot carry names the task.

        ``sent_apart`` (for a broker that :attr:`~celeriac.brokers.base.Broker.keeps_sent_at`):
        the envelope carries ``sent_at`` and the body leaves it out."""
        sent_at = (self.sent_at or time.time()) if sent_apart else None
        try:
            body = encode(self, codec, sent_at is None)
        except SerializationError as exc:
            raise SerializationError(f"{self.task}[{self.id}]: {exc}") from None
        return Envelope(self.id, self.queue, self.priority, body, self.eta, sent_at)

    def replace(self, **changes: Any) -> Message:
        """A copy with some fields changed."""
        return replace(self, **changes)


def encode(message: Message, codec: Codec, with_sent_at: bool = True) -> bytes:
    """The wire form: a dict with the protocol version ``v`` and only what is set.

    The id, queue and priority travel in the envelope, which every broker keeps
    beside the body and hands back with each delivery, so the body leaves them
    out (as it leaves out empty arguments, zero retries, and a root that is the
    task itself): a queued task costs a third less memory in the broker.
    ``sent_at`` too, when ``with_sent_at`` is false: for a broker that keeps it
    beside the body (Redis, in an entry's header).
    """
    tag = codec.needs_tags
    body: dict[str, Any] = {"v": PROTOCOL_VERSION, "task": message.task}
    if message.args:
        body["args"] = to_wire(list(message.args), "args") if tag else list(message.args)
    if message.kwargs:
        body["kwargs"] = to_wire(message.kwargs, "kwargs") if tag else message.kwargs
    if message.retries:
        body["retries"] = message.retries
    if with_sent_at:
        body["sent_at"] = message.sent_at or time.time()
    if message.eta is not None or message.expires is not None or message.parent_id is not None:
        _add_times_and_parent(body, message)
    if message.root_id is not None and message.root_id != message.id:
        body["root_id"] = message.root_id
    if message.group_id is not None or message.chord is not None:
        _add_workflow(body, message, tag)
    if message.callbacks:
        body["callbacks"] = (
            to_wire(message.callbacks, "callbacks") if tag else list(message.callbacks)
        )
    if message.errbacks:
        body["errbacks"] = to_wire(message.errbacks, "errbacks") if tag else list(message.errbacks)
    if message.ignore_result:
        body["ignore_result"] = True
    if message.headers:
        body["headers"] = to_wire(message.headers, "headers") if tag else message.headers
    return codec.dumps(body)


def _add_times_and_parent(body: dict[str, Any], message: Message) -> None:
    if message.eta is not None:
        body["eta"] = message.eta
    if message.expires is not None:
        body["expires"] = message.expires
    if message.parent_id is not None:
        body["parent_id"] = message.parent_id


def _add_workflow(body: dict[str, Any], message: Message, tag: bool) -> None:
    if message.group_id is not None:
        body["group_id"] = message.group_id
    if message.group_index is not None:
        body["group_index"] = message.group_index
    if message.chord is not None:  # signatures carry arguments: tagged like them
        body["chord"] = to_wire(message.chord, "chord") if tag else message.chord


class Carrier(Protocol):
    """What a broker hands back with a body: a :class:`Delivery` or a dead letter."""

    @property
    def id(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def sent_at(self) -> float | None: ...


def decode(data: bytes, codec: Codec, carrier: Carrier | None = None) -> Message:
    """Read a message body, raising :class:`MessageDecodeError` with the reason.

    The id, queue, priority and ``sent_at`` come from the ``carrier`` the broker
    handed the body with, unless the body names them itself. Every field is checked before
    anything runs: a body with one field of the wrong shape is refused whole,
    naming the field, rather than run with that part failing or skipped."""
    try:
        body = codec.loads(data)
    except MessageDecodeError:
        raise
    except Exception as exc:
        raise MessageDecodeError(f"body cannot be read: {exc!r}") from exc
    if not isinstance(body, dict):
        raise MessageDecodeError(f"body is a {type(body).__name__}, not a message object")
    version = body.get("v")
    if version != PROTOCOL_VERSION:
        raise MessageDecodeError(
            f"message protocol version {version!r} is not {PROTOCOL_VERSION}: "
            "producer and worker run incompatible celeriac versions"
        )
    if carrier is not None:
        body.setdefault("id", carrier.id)
        body.setdefault("queue", carrier.queue)
        body.setdefault("priority", carrier.priority)
        if carrier.sent_at is not None:
            body.setdefault("sent_at", carrier.sent_at)
    check_fields(body)
    task_id = body["id"]
    return Message(
        id=task_id,
        task=body["task"],
        args=tuple(body.get("args", ())),
        kwargs=body.get("kwargs", {}),
        queue=body["queue"],
        priority=body["priority"],
        eta=body.get("eta"),
        expires=body.get("expires"),
        retries=body.get("retries", 0),
        parent_id=body.get("parent_id"),
        root_id=body.get("root_id", task_id),
        group_id=body.get("group_id"),
        group_index=body.get("group_index"),
        callbacks=tuple(body.get("callbacks", ())),
        errbacks=tuple(body.get("errbacks", ())),
        chord=body.get("chord"),
        ignore_result=body.get("ignore_result", False),
        sent_at=float(body.get("sent_at", 0.0)),
        headers=body.get("headers") or {},
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_signature(value: Any) -> bool:
    """A signature's plain form: a dict naming its task, or a workflow's dict."""
    return isinstance(value, dict) and (
        isinstance(value.get("task"), str) or isinstance(value.get("subtask_type"), str)
    )


def _is_signatures(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(map(_is_signature, value))


def _is_chord(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and _is_signature(value.get("callback"))
        and _is_int(value.get("size"))
        and value["size"] > 0
    )


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


#: field -> (check, what it must be); a field left out takes the Message default
_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "id": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "task": (lambda v: isinstance(v, str) and v != "", "a non-empty string (the task name)"),
    "queue": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "priority": (lambda v: _is_int(v) and MIN_PRIORITY <= v <= MAX_PRIORITY, "an int 0-9"),
    "args": (lambda v: isinstance(v, (list, tuple)), "a list"),
    "kwargs": (
        lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
        "an object with string keys",
    ),
    "eta": (_optional(_is_number), "a number (unix seconds) or null"),
    "expires": (_optional(_is_number), "a number (unix seconds) or null"),
    "retries": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    "parent_id": (_optional(_is_str), "a string or null"),
    "root_id": (_optional(_is_str), "a string or null"),
    "group_id": (_optional(_is_str), "a string or null"),
    "group_index": (_optional(lambda v: _is_int(v) and v >= 0), "an int >= 0 or null"),
    "callbacks": (_is_signatures, "a list of signatures (dicts naming a task)"),
    "errbacks": (_is_signatures, "a list of signatures (dicts naming a task)"),
    "chord": (
        _optional(_is_chord),
        'null or {"callback": a signature, "size": an int > 0}',
    ),
    "ignore_result": (lambda v: isinstance(v, bool), "true or false"),
    "sent_at": (_is_number, "a number (unix seconds)"),
    "headers": (
        lambda v: v is None or (isinstance(v, dict) and all(isinstance(k, str) for k in v)),
        "an object with string keys",
    ),
}


def check_fields(body: dict[str, Any]) -> None:
    """Raise :class:`MessageDecodeError` naming the first field of a body that
    cannot be run as sent (required: ``id``, ``task``, ``queue``, ``priority``)."""
    for name in ("id", "task", "queue", "priority"):
        if name not in body:
            hint = " (give decode() the delivery the body came with)" if name == "id" else ""
            raise MessageDecodeError(f"malformed message: field {name!r} is missing{hint}")
    for name, (check, expected) in _FIELDS.items():
        if name in body and not check(body[name]):
            value = repr(body[name])
            if len(value) > 80:
                value = value[:77] + "..."
            raise MessageDecodeError(
                f"malformed message: field {name!r} must be {expected}, not {value}"
            )
    if body.get("group_id") is None and body.get("chord") is not None:
        raise MessageDecodeError("malformed message: field 'chord' needs a 'group_id'")


def check_priority(priority: int) -> int:
    """Priorities are 0 (lowest) to 9 (highest) on every broker.

    Every :class:`Envelope` checks its own, so no message reaches a broker without;
    the defaults a task or a signature keeps for later are checked where they are
    written, so a mistake fails there rather than at the first send.
    """
    if not isinstance(priority, int) or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ConfigurationError(
            f"priority {priority!r} is out of range: use an int from 0 (lowest) to 9 (highest)"
        )
    return priority


__all__ = [
    "Carrier",
    "Delivery",
    "Envelope",
    "Message",
    "check_fields",
    "check_priority",
    "decode",
    "encode",
    "from_wire",
]
