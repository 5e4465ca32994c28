"""The event wire format: Celery's field names, whole arguments, marked truncation."""

from __future__ import annotations

import datetime
import decimal

import orjson

from celeriac.events import TASK_SUCCEEDED, Event, encode_event
from celeriac.events.dispatcher import pack
from celeriac.events.event import decode_item


def test_an_event_round_trips_with_celery_field_names() -> None:
    fields = {
        "type": TASK_SUCCEEDED,
        "timestamp": 1.5,
        "uuid": "t1",
        "name": "proj.add",
        "hostname": "w1@h",
        "pid": 42,
        "args": [1, {"deep": [2, 3]}],
        "kwargs": {"x": 1},
        "result": 5,
        "runtime": 0.25,
        "retries": 2,
        "queue": "q",
        "custom": "kept",
    }
    data = encode_event(dict(fields), max_size=10_000)

    assert orjson.loads(data)["uuid"] == "t1"  # Celery's name on the wire
    event = Event.decode(data, position="7")
    assert (event.type, event.task_id, event.name, event.hostname) == (
        TASK_SUCCEEDED,
        "t1",
        "proj.add",
        "w1@h",
    )
    assert event.args == [1, {"deep": [2, 3]}] and event.kwargs == {"x": 1}
    assert (event.result, event.runtime, event.retries, event.pid) == (5, 0.25, 2, 42)
    assert event.state == "SUCCESS" and event.is_task and not event.is_worker
    assert event.position == "7" and event.truncated == ()
    assert event.extra == {"custom": "kept"}
    assert event.to_dict()["uuid"] == "t1" and event.to_dict()["custom"] == "kept"


def test_large_arguments_are_cut_and_marked_small_ones_stay_whole() -> None:
    big = "x" * 5000
    data = encode_event(
        {
            "type": "task-received",
            "timestamp": 1.0,
            "args": [big],
            "kwargs": {"small": 1},
            "traceback": "T" * 3000,
        },
        max_size=1000,
    )
    event = Event.decode(data)

    assert set(event.truncated) == {"args", "traceback"}
    assert isinstance(event.args, str) and event.args.startswith('["xxx')
    assert event.args.endswith("...") and len(event.args) == 1003
    assert event.traceback == "T" * 1000 + "..."
    assert event.kwargs == {"small": 1}


def test_values_json_cannot_carry_are_shown_not_refused() -> None:
    class Custom:
        def __repr__(self) -> str:
            return "<Custom>"

    data = encode_event(
        {
            "type": "task-sent",
            "timestamp": 1.0,
            "args": [Custom(), b"raw", decimal.Decimal("1.5"), 2**70, (1, 2)],
            "kwargs": {"when": datetime.date(2024, 1, 2), 3: "int key"},
        },
        max_size=10_000,
    )
    event = Event.decode(data)

    assert event.args == ["<Custom>", "b'raw'", "Decimal('1.5')", str(2**70), [1, 2]]
    assert event.kwargs == {"when": "2024-01-02", "3": "int key"}


def test_a_malformed_item_becomes_an_unknown_event() -> None:
    event = Event.decode(b"not json", position="3")
    assert event.type == "unknown" and event.position == "3"
    assert event.extra["raw"] == "not json"


def test_a_pack_decodes_to_its_events_with_their_own_positions() -> None:
    one = encode_event({"type": "task-sent", "timestamp": 1.0, "uuid": "a"}, 1000)
    two = encode_event({"type": "task-sent", "timestamp": 2.0, "uuid": "b"}, 1000)
    events = decode_item("42", pack([one, two]))
    assert [(e.task_id, e.position) for e in events] == [("a", "42:0"), ("b", "42:1")]
    assert [e.position for e in decode_item("43", pack([one]))] == ["43"]
    assert decode_item("44", b"[1, {]")[0].type == "unknown"


def test_a_tasks_group_lends_its_first_events_id_name_and_worker_to_the_rest() -> None:
    received = {
        "type": "task-received", "timestamp": 1.0, "uuid": "a", "name": "t", "hostname": "w@h",
        "pid": 7, "queue": "q", "retries": 2, "args": [1],
    }  # fmt: skip
    started = {"type": "task-started", "timestamp": 2.0}
    failed = {"type": "task-failed", "timestamp": 3.0, "hostname": "other@h", "exception": "E"}
    group = orjson.dumps([received, started, failed])
    lone = encode_event({"type": "task-sent", "timestamp": 4.0, "uuid": "b"}, 1000)

    events = decode_item("42", pack([group, lone]))
    assert [(e.type, e.task_id, e.position) for e in events] == [
        ("task-received", "a", "42:0"),
        ("task-started", "a", "42:1"),
        ("task-failed", "a", "42:2"),
        ("task-sent", "b", "42:3"),
    ]
    started_event, failed_event = events[1], events[2]
    assert (started_event.name, started_event.hostname, started_event.pid) == ("t", "w@h", 7)
    assert (started_event.queue, started_event.retries) == ("q", 2)
    assert started_event.args is None  # only the task's identity is shared, not its arguments
    assert failed_event.hostname == "other@h" and failed_event.exception == "E"  # its own win
    assert [e.type for e in decode_item("43", pack([group]))] == [
        "task-received", "task-started", "task-failed",
    ]  # fmt: skip


def test_packs_travel_compressed_and_a_corrupt_one_becomes_an_unknown_event() -> None:
    events = [
        encode_event({"type": "task-sent", "timestamp": float(i), "uuid": str(i)}, 1000)
        for i in range(100)
    ]
    item = pack(events)
    assert len(item) < sum(map(len, events)) / 4
    assert [e.task_id for e in decode_item("1", item)] == [str(i) for i in range(100)]
    assert [e.type for e in decode_item("2", item[:-10])] == ["unknown"]


def test_a_task_sent_event_without_root_id_is_its_own_root() -> None:
    """Producers leave out a root that is the task itself (less to keep in the stream)."""
    own = Event.decode(encode_event({"type": "task-sent", "timestamp": 1.0, "uuid": "a"}, 100))
    assert own.root_id == "a"
    child = encode_event({"type": "task-sent", "timestamp": 1.0, "uuid": "b", "root_id": "a"}, 100)
    assert Event.decode(child).root_id == "a"
    succeeded = Event.decode(encode_event({"type": TASK_SUCCEEDED, "uuid": "a"}, 100))
    assert succeeded.root_id is None
