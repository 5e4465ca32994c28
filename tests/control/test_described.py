"""What inspect shows of one task: arguments cut as task events cut them, prefetched
messages decoded only when asked, undecodable ones reported rather than raised."""

from __future__ import annotations

from typing import Any

import orjson

from celeriac import Celeriac
from celeriac.control.described import reserved_info, shown_arguments
from celeriac.control.protocol import Reply, dumps
from celeriac.message import Delivery, encode


def test_small_arguments_travel_whole() -> None:
    assert shown_arguments([1, "two"], {"three": 3}, 100) == {
        "args": [1, "two"],
        "kwargs": {"three": 3},
    }


def test_an_argument_beyond_the_limit_is_cut_to_its_json_start_and_named() -> None:
    shown = shown_arguments(["x" * 50], {"k": 1}, 20)
    assert shown == {"args": '["' + "x" * 18 + "...", "kwargs": {"k": 1}, "truncated": ["args"]}


def test_both_may_be_cut_and_multibyte_text_is_never_split() -> None:
    shown = shown_arguments(["é" * 30], {"k": "é" * 30}, 10)
    assert shown["truncated"] == ["args", "kwargs"]
    assert shown["args"] == '["éééé...'  # 2 + 4*2 bytes: the fifth é would not fit
    assert shown["kwargs"].endswith("...") and len(shown["kwargs"].encode()) <= 13


def test_values_json_cannot_carry_are_measured_by_their_repr() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    assert shown_arguments([Opaque()], {"huge": 2**70}, 100)["args"][0].__class__ is Opaque
    shown = shown_arguments([Opaque()] * 40, {}, 50)
    assert shown["truncated"] == ["args"] and shown["args"].startswith('["<opaque>"')


def _delivery(body: dict[str, Any] | bytes, deliveries: int = 1) -> Delivery:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return Delivery("m-1", "q", 7, data, "tag-1", deliveries)


def test_a_prefetched_message_is_described_from_its_delivery(app: Celeriac) -> None:
    message = app.tasks["t.add"].build_message((1, 2), {"extra": True})
    body = encode(message, app.codec)
    info = reserved_info(app, Delivery(message.id, message.queue, 7, body, "t", 3), "w1@host")
    assert (info["id"], info["name"]) == (message.id, "t.add")
    assert (info["args"], info["kwargs"]) == ([1, 2], {"extra": True})
    assert info["deliveries"] == 3 and info["delivery_info"]["redelivered"] is True
    assert info["time_start"] is None and info["acknowledged"] is False


def test_an_undecodable_prefetched_message_is_reported_not_raised(app: Celeriac) -> None:
    info = reserved_info(app, _delivery(b"\xff not a message", deliveries=2), "w1@host", pid=42)
    assert info["id"] == "m-1" and info["name"] is None and info["worker_pid"] == 42
    assert info["error"].startswith("cannot be decoded")
    assert (info["queue"], info["priority"], info["deliveries"]) == ("q", 7, 2)


def test_an_int_beyond_64_bits_or_deep_nesting_never_breaks_a_reply() -> None:
    deep: list[Any] = []
    inner = deep
    for _ in range(300):  # deeper than JSON encoders allow
        inner.append([])
        inner = inner[0]
    shown = shown_arguments([2**70, deep], {"n": -(2**80)}, 10_000)
    assert shown["args"][0] == 2**70  # shown whole: it fits
    assert orjson.loads(dumps(shown))["args"][0] == str(2**70)
    assert orjson.loads(Reply("w1@host", [shown]).encode())["value"][0]["kwargs"] == {
        "n": str(-(2**80))
    }
