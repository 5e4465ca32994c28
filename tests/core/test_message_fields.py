"""Bodies that cannot be run as sent are refused whole, naming the field."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from celeriac.exceptions import MessageDecodeError
from celeriac.message import Delivery, decode
from celeriac.serialization import Codec

GOOD: dict[str, Any] = {"v": 1, "task": "proj.add", "args": [1, 2], "sent_at": 1.0}
SIGNATURE = {"task": "proj.done", "args": [], "kwargs": {}, "options": {}}

BAD_FIELDS = [
    ("task", 42),
    ("task", ""),
    ("args", {"a": 1}),
    ("args", "1, 2"),
    ("kwargs", [1, 2]),
    ("eta", "2026-01-01T00:00:00"),
    ("expires", "in an hour"),
    ("expires", True),
    ("retries", "3"),
    ("retries", -1),
    ("parent_id", 7),
    ("root_id", ["x"]),
    ("group_id", 1),
    ("group_index", "0"),
    ("callbacks", "proj.done"),
    ("callbacks", [1, 2]),
    ("callbacks", [{"args": []}]),
    ("errbacks", {"task": "proj.done"}),
    ("chord", "proj.done"),
    ("chord", {"callback": SIGNATURE}),
    ("chord", {"callback": "proj.done", "size": 2}),
    ("ignore_result", "yes"),
    ("sent_at", "now"),
    ("headers", ["a", "b"]),
    ("priority", 12),
    ("queue", 3),
]


def _delivery(body: bytes) -> Delivery:
    return Delivery("id-1", "celeriac", 5, body, "tag")


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
def test_a_field_of_the_wrong_shape_is_refused_and_named(field: str, value: Any) -> None:
    # Given a body that is good but for one field
    body = orjson.dumps({**GOOD, "group_id": "g", field: value})
    # When it is decoded, Expect an error that names the field
    with pytest.raises(MessageDecodeError, match=f"field '{field}'"):
        decode(body, Codec(), _delivery(body))


def test_a_good_body_with_every_field_decodes() -> None:
    body = {
        **GOOD,
        "kwargs": {"c": 3},
        "eta": 2.5,
        "expires": 3,
        "retries": 2,
        "parent_id": "p",
        "root_id": "r",
        "group_id": "g",
        "group_index": 0,
        "callbacks": [SIGNATURE],
        "errbacks": [{"subtask_type": "chain", "kwargs": {"tasks": []}}],
        "chord": {"callback": SIGNATURE, "size": 2},
        "ignore_result": True,
        "headers": {"h": 1},
    }
    message = decode(orjson.dumps(body), Codec(), _delivery(b""))
    assert message.args == (1, 2) and message.expires == 3 and message.chord is not None


def test_a_chord_without_its_group_is_refused() -> None:
    body = orjson.dumps({**GOOD, "chord": {"callback": SIGNATURE, "size": 2}})
    with pytest.raises(MessageDecodeError, match="group_id"):
        decode(body, Codec(), _delivery(body))


def test_bytes_that_are_no_body_at_all_are_refused_with_the_reason() -> None:
    with pytest.raises(MessageDecodeError, match="cannot decode json body"):
        decode(b"{not json", Codec(), _delivery(b""))
