"""Serializers: JSON by default (orjson), msgpack and signed pickle on request.

JSON carries the Python types tasks most often pass (datetimes, dates, times,
timedeltas, UUIDs, decimals, bytes, sets) as small tagged objects
``{"$t": "uuid", "v": "..."}`` so they come back as the same type. Anything else
raises :class:`SerializationError` naming where in the arguments it sits, at
``delay()`` time, not later in a worker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import pickle
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson

from .exceptions import (
    ConfigurationError,
    MessageDecodeError,
    MissingExtraError,
    SerializationError,
)

TAG = "$t"
_TAG_BYTES = b'"$t"'
_PLAIN = (str, int, float, bool, type(None))


def _tag(kind: str, value: Any) -> dict[str, Any]:
    return {TAG: kind, "v": value}


def to_wire(obj: Any, path: str = "value") -> Any:
    """Return ``obj`` with every special type replaced by its tagged form."""
    kind = type(obj)
    if kind in _PLAIN:
        return obj
    if kind is list or kind is tuple:
        return [to_wire(item, f"{path}[{i}]") for i, item in enumerate(obj)]
    if kind is dict:
        out = {}
        for key, item in obj.items():
            if not isinstance(key, str):
                raise SerializationError(
                    f"{path} has a key {key!r} of type {type(key).__name__}: JSON keys must be str"
                )
            out[key] = to_wire(item, f"{path}[{key!r}]")
        return out
    return _special_to_wire(obj, path)


def _special_to_wire(obj: Any, path: str) -> Any:
    if isinstance(obj, datetime):
        return _tag("datetime", obj.isoformat())
    if isinstance(obj, date):
        return _tag("date", obj.isoformat())
    if isinstance(obj, time):
        return _tag("time", obj.isoformat())
    if isinstance(obj, timedelta):
        return _tag("timedelta", obj.total_seconds())
    if isinstance(obj, uuid.UUID):
        return _tag("uuid", str(obj))
    if isinstance(obj, Decimal):
        return _tag("decimal", str(obj))
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _tag("bytes", base64.b64encode(bytes(obj)).decode())
    if isinstance(obj, (set, frozenset)):
        return _tag("set", [to_wire(item, f"{path}[*]") for item in obj])
    if isinstance(obj, (list, tuple)):
        return [to_wire(item, f"{path}[{i}]") for i, item in enumerate(obj)]
    if isinstance(obj, dict):
        return to_wire(dict(obj), path)
    if isinstance(obj, (str, int, float)):  # subclasses such as IntEnum or StrEnum
        return obj
    raise SerializationError(
        f"{path} is a {type(obj).__module__}.{type(obj).__qualname__}, which JSON cannot carry: "
        "pass plain data (str, int, float, bool, None, list, dict, datetime, UUID, Decimal, "
        "bytes) or choose task_serializer='pickle'"
    )


_FROM_TAG: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "timedelta": lambda v: timedelta(seconds=v),
    "uuid": uuid.UUID,
    "decimal": Decimal,
    "bytes": base64.b64decode,
    "set": lambda v: set(from_wire(v)),
}


def from_wire(obj: Any) -> Any:
    """Undo :func:`to_wire`."""
    kind = type(obj)
    if kind is list:
        return [from_wire(item) for item in obj]
    if kind is dict:
        tag = obj.get(TAG)
        if tag is not None and len(obj) == 2 and tag in _FROM_TAG:
            return _FROM_TAG[tag](obj["v"])
        return {key: from_wire(item) for key, item in obj.items()}
    return obj


class Serializer:
    """Turns a dict of plain and tagged data into bytes and back."""

    name = "json"

    def dumps(self, obj: dict[str, Any]) -> bytes:
        return orjson.dumps(obj)

    def loads(self, data: bytes) -> Any:
        return orjson.loads(data)


class JSONSerializer(Serializer):
    """The default: orjson over tagged data; the body starts with ``{``."""

    def loads(self, data: bytes) -> Any:
        value = orjson.loads(data)
        return from_wire(value) if _TAG_BYTES in data else value


class MsgpackSerializer(Serializer):
    """msgpack over the same tagged data (``celeriac[msgpack]``)."""

    name = "msgpack"

    def __init__(self) -> None:
        try:
            import msgpack
        except ImportError as exc:
            raise MissingExtraError("msgpack", "msgpack") from exc
        self._msgpack = msgpack

    def dumps(self, obj: dict[str, Any]) -> bytes:
        return self._msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]

    def loads(self, data: bytes) -> Any:
        return from_wire(self._msgpack.unpackb(data, raw=False))


class PickleSerializer(Serializer):
    """Pickle, signed with HMAC-SHA256 so a worker never unpickles bytes it did not sign.

    Opt-in only: set ``task_serializer="pickle"``, add ``"pickle"`` to
    ``accept_content`` and set ``security_key`` on producers and workers alike.
    """

    name = "pickle"

    def __init__(self, key: str | None) -> None:
        if not key:
            raise ConfigurationError(
                "the pickle serializer needs security_key: set the same secret on "
                "producers and workers so that workers only unpickle signed messages"
            )
        self._key = key.encode()

    def dumps(self, obj: dict[str, Any]) -> bytes:
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        return hmac.new(self._key, payload, hashlib.sha256).digest() + payload

    def loads(self, data: bytes) -> Any:
        signature, payload = data[:32], data[32:]
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected):
            raise MessageDecodeError("pickle message has a bad signature: security_key differs")
        return pickle.loads(payload)


class Codec:
    """Encodes with one serializer; decodes any serializer in ``accept_content``.

    A JSON body starts with ``{``; any other body starts with the serializer's
    name and a NUL byte, so the reader knows how to decode it.
    """

    def __init__(
        self,
        serializer: str = "json",
        accept: tuple[str, ...] | list[str] = ("json",),
        security_key: str | None = None,
    ) -> None:
        known = {"json", "msgpack", "pickle"}
        for name in (serializer, *accept):
            if name not in known:
                raise ConfigurationError(
                    f"unknown serializer {name!r}: choose one of {sorted(known)}"
                )
        self._accept = set(accept) | {serializer}
        self._serializers: dict[str, Serializer] = {}
        self._key = security_key
        self.serializer = self._get(serializer)
        #: whether values must be turned into tagged plain data before dumps
        self.needs_tags = serializer != "pickle"
        self._prefix = b"" if serializer == "json" else serializer.encode() + b"\x00"

    def check(self) -> None:
        """Raise :class:`ConfigurationError` now for any accepted serializer that cannot
        work (pickle without ``security_key``, msgpack not installed), not at the first
        message."""
        for name in sorted(self._accept):
            self._get(name)

    def _get(self, name: str) -> Serializer:
        found = self._serializers.get(name)
        if found is None:
            if name == "json":
                found = JSONSerializer()
            elif name == "msgpack":
                found = MsgpackSerializer()
            else:
                found = PickleSerializer(self._key)
            self._serializers[name] = found
        return found

    def dumps(self, obj: dict[str, Any]) -> bytes:
        try:
            return self._prefix + self.serializer.dumps(obj)
        except TypeError as exc:
            raise SerializationError(str(exc)) from exc

    def loads(self, data: bytes) -> Any:
        if data[:1] == b"{":
            name, payload = "json", data
        else:
            head, sep, payload = data.partition(b"\x00")
            if not sep:
                raise MessageDecodeError("body is neither JSON nor tagged with a serializer name")
            name = head.decode("ascii", "replace")
        if name not in self._accept:
            raise MessageDecodeError(
                f"content {name!r} is not in accept_content {sorted(self._accept)}"
            )
        try:
            return self._get(name).loads(payload)
        except MessageDecodeError:
            raise
        except Exception as exc:
            raise MessageDecodeError(f"cannot decode {name} body: {exc}") from exc
