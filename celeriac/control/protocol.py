"""The remote-control wire format: commands on one stream, replies on another.

A command is a JSON object appended to the broker's stream ``"control"``; every
worker reads that stream from where it started and handles the commands
addressed to it (``destination`` names workers; none means all). A worker
answers on the stream ``"reply:<command id>"``, which only the sender reads.
Commands carry their sending time and a time to live, so a worker that was
stuck for a while does not act on stale orders (a late ``shutdown``, say).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..events.event import to_json

CONTROL_STREAM = "control"
CONTROL_MAXLEN = 10_000  # commands kept; workers read new ones within a second
REPLY_MAXLEN = 1_000  # replies kept per command: more than any cluster has workers
DEFAULT_TTL = 60.0  # seconds a command stays actionable


def reply_stream(command_id: str) -> str:
    """Where the replies to one command go."""
    return f"reply:{command_id}"


def dumps(value: Any) -> bytes:
    """JSON for the control channel, written as events are (see ``events.event.to_json``):
    a task argument can be anything its serializer carries, and an int beyond 64 bits,
    a value JSON cannot carry or nesting deeper than JSON allows must not fail a reply."""
    return to_json(value)


class ProtocolError(ValueError):
    """A control stream item is not a command or reply this version can read."""


@dataclass(frozen=True, slots=True)
class Command:
    """One remote-control command."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    destination: tuple[str, ...] | None = None  # worker hostnames; None means every worker
    reply: bool = True
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    sent_at: float = field(default_factory=time.time)
    ttl: float = DEFAULT_TTL

    @classmethod
    def create(
        cls,
        name: str,
        arguments: dict[str, Any] | None = None,
        destination: Sequence[str] | str | None = None,
        reply: bool = True,
        ttl: float = DEFAULT_TTL,
    ) -> Command:
        if isinstance(destination, str):
            destination = [d for d in destination.split(",") if d]
        return cls(
            name,
            dict(arguments or {}),
            tuple(destination) if destination is not None else None,
            reply,
            ttl=ttl,
        )

    def is_for(self, hostname: str) -> bool:
        return self.destination is None or hostname in self.destination

    @property
    def expired(self) -> bool:
        return time.time() > self.sent_at + self.ttl

    def encode(self) -> bytes:
        return dumps(
            {
                "id": self.id,
                "command": self.name,
                "arguments": self.arguments,
                "destination": self.destination,
                "reply": self.reply,
                "sent_at": self.sent_at,
                "ttl": self.ttl,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> Command:
        try:
            body = orjson.loads(data)
            destination = body.get("destination")
            return cls(
                name=str(body["command"]),
                arguments=dict(body.get("arguments") or {}),
                destination=tuple(destination) if destination is not None else None,
                reply=bool(body.get("reply", True)),
                id=str(body["id"]),
                sent_at=float(body["sent_at"]),
                ttl=float(body.get("ttl", DEFAULT_TTL)),
            )
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"not a control command: {data[:200]!r}") from exc


@dataclass(frozen=True, slots=True)
class Reply:
    """One worker's answer to one command: a value, or ``{"error": ...}``."""

    hostname: str
    value: Any

    def encode(self) -> bytes:
        return dumps({"hostname": self.hostname, "value": self.value})

    @classmethod
    def decode(cls, data: bytes) -> Reply:
        try:
            body = orjson.loads(data)
            return cls(str(body["hostname"]), body.get("value"))
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ProtocolError(f"not a control reply: {data[:200]!r}") from exc
