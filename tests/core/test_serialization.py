"""Given task arguments of common Python types, expect them back as the same types."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import orjson
import pytest

from celeriac.exceptions import ConfigurationError, MessageDecodeError, SerializationError
from celeriac.message import Delivery, Message, decode, encode
from celeriac.serialization import Codec

VALUES = {
    "datetime": datetime(2026, 11, 25, 10, 0, 1, 123456, tzinfo=timezone.utc),
    "naive": datetime(2026, 1, 2, 3, 4, 5),
    "date": date(2026, 2, 3),
    "time": time(4, 5, 6),
    "delta": timedelta(hours=1, microseconds=5),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "decimal": Decimal("3.14159265358979323846"),
    "bytes": b"\x00\xffbinary",
    "set": {1, 2, 3},
    "nested": {"a": [1, {"b": Decimal("1.5")}], "c": None},
}


def roundtrip(codec: Codec, args: tuple, kwargs: dict) -> Message:
    message = Message(id="m1", task="t", args=args, kwargs=kwargs)
    return decode(encode(message, codec), codec, message)


def test_special_types_round_trip_in_json() -> None:
    got = roundtrip(Codec(), (VALUES["uuid"], [VALUES["bytes"]]), VALUES)
    assert got.args == (VALUES["uuid"], [VALUES["bytes"]])
    assert got.kwargs == VALUES
    assert type(got.kwargs["decimal"]) is Decimal


def test_tuples_become_lists_as_in_json() -> None:
    assert roundtrip(Codec(), ((1, 2),), {}).args == ([1, 2],)


def test_unserializable_argument_is_named_at_send_time() -> None:
    with pytest.raises(SerializationError, match=r"kwargs\['when'\]\[1\].*object"):
        roundtrip(Codec(), (), {"when": [1, object()]})


def test_non_string_dict_keys_are_refused_with_the_path() -> None:
    with pytest.raises(SerializationError, match=r"args\[0\] has a key 1"):
        roundtrip(Codec(), ({1: "x"},), {})


def test_the_body_leaves_out_what_the_envelope_carries_and_defaults() -> None:
    """Given a plain task message, expect a body with none of the id, queue, priority,
    empty arguments, zero retries or a root that is the task itself (the broker keeps
    the first three beside the body), and the same message back from the delivery."""
    codec = Codec()
    message = Message(id="m1", task="t", queue="q", priority=7, root_id="m1", sent_at=1.5)
    body = encode(message, codec)
    assert orjson.loads(body) == {"v": 1, "task": "t", "sent_at": 1.5}
    delivery = Delivery("m1", "q", 7, body, tag="x")
    assert decode(body, codec, delivery) == message
    with pytest.raises(MessageDecodeError, match="delivery"):
        decode(body, codec)


def test_sent_at_travels_beside_the_body_for_a_broker_that_keeps_it() -> None:
    """Given a broker that keeps sent_at beside the body (Redis), expect the envelope to
    carry it, the body to leave it out, and the delivery to give the same message back."""
    codec = Codec()
    message = Message(id="m1", task="t", queue="q", priority=7, root_id="m1", sent_at=1.5)
    env = message.envelope(codec, sent_apart=True)
    assert env.sent_at == 1.5 and orjson.loads(env.body) == {"v": 1, "task": "t"}
    delivery = Delivery("m1", "q", 7, env.body, tag="x", sent_at=1.5)
    assert decode(env.body, codec, delivery) == message
    assert message.envelope(codec).sent_at is None  # elsewhere: in the body, as before


def test_a_body_that_names_its_id_queue_and_priority_decodes_alone() -> None:
    body = orjson.dumps(
        {"v": 1, "id": "m", "task": "t", "args": [1], "kwargs": {}, "queue": "q", "priority": 2}
    )
    got = decode(body, Codec())
    assert (got.id, got.queue, got.priority, got.args, got.root_id) == ("m", "q", 2, (1,), "m")


def test_garbage_bytes_raise_decode_error() -> None:
    for body in (b"not json", b"{broken", b"[1, 2]", b'{"v": 99}', b"\x80\x04pickle"):
        with pytest.raises(MessageDecodeError):
            decode(body, Codec())


def test_pickle_needs_a_key_and_rejects_unsigned_bodies() -> None:
    with pytest.raises(ConfigurationError, match="security_key"):
        Codec("pickle", ["pickle"])
    signer = Codec("pickle", ["pickle"], security_key="k1")
    body = encode(Message(id="m", task="t", args=(object.__name__,)), signer)
    assert decode(body, signer, Message(id="m", task="t")).args == ("object",)
    with pytest.raises(MessageDecodeError, match="signature"):
        decode(body, Codec("pickle", ["pickle"], security_key="other"))


def test_json_worker_refuses_pickle_content() -> None:
    body = encode(Message(id="m", task="t"), Codec("pickle", ["pickle"], security_key="k"))
    with pytest.raises(MessageDecodeError, match="accept_content"):
        decode(body, Codec())


def test_unknown_serializer_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown serializer 'yaml'"):
        Codec("yaml")


def test_msgpack_round_trips_the_same_types() -> None:
    codec = Codec("msgpack", ["msgpack"])
    got = roundtrip(codec, (VALUES["uuid"],), VALUES)
    assert got.args == (VALUES["uuid"],)
    assert got.kwargs == VALUES
