"""Reading events: from the oldest, from now, and resuming after a restart."""

from __future__ import annotations

import threading
from pathlib import Path

from celeriac import Celeriac
from celeriac.events import NEWEST, OLDEST, EventReceiver, dispatcher_for
from celeriac.events.receiver import _cursor


def _send(app: Celeriac, *ids: str, kind: str = "task-sent") -> None:
    dispatcher = dispatcher_for(app)
    for task_id in ids:
        dispatcher.send(kind, uuid=task_id)
    assert dispatcher.flush()


def test_a_receiver_resumes_after_the_last_event_it_handed_out(
    app: Celeriac, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "monitor.position"
    _send(app, *(str(i) for i in range(10)))

    first = EventReceiver(app, after=OLDEST, checkpoint=checkpoint)
    seen = []
    for event in first.iter(timeout=0.2):
        seen.append(event.task_id)
        if len(seen) == 4:
            break  # the monitor stops (or is restarted) here
    first.close()
    assert seen == ["0", "1", "2", "3"]
    assert checkpoint.read_text() != ""

    _send(app, "10", "11")
    second = EventReceiver(app, after=OLDEST, checkpoint=checkpoint)  # checkpoint wins
    rest = [e.task_id for e in second.iter(timeout=0.2)]
    assert rest == [str(i) for i in range(4, 12)]

    third = EventReceiver(app, checkpoint=checkpoint)
    assert list(third.iter(timeout=0.1)) == []  # nothing new since the second stopped


def test_newest_skips_history_and_types_filter(app: Celeriac) -> None:
    _send(app, "old")
    receiver = EventReceiver(app, after=NEWEST, types={"task-succeeded"})
    _send(app, "a", kind="task-started")
    _send(app, "b", kind="task-succeeded")
    assert [(e.type, e.task_id) for e in receiver.iter(timeout=0.2)] == [("task-succeeded", "b")]


def test_a_position_beyond_the_stream_means_it_was_reset(app: Celeriac) -> None:
    _send(app, "x", "y")
    receiver = EventReceiver(app, after="999999")
    assert [e.task_id for e in receiver.iter(timeout=0.2)] == ["x", "y"]


def test_stop_ends_a_blocking_loop_from_another_thread(app: Celeriac) -> None:
    receiver = EventReceiver(app)
    seen: list[str | None] = []
    loop = threading.Thread(target=lambda: seen.extend(e.task_id for e in receiver))
    loop.start()
    _send(app, "live")
    for _ in range(100):
        if seen:
            break
        loop.join(0.05)
    receiver.stop()
    loop.join(5)
    assert not loop.is_alive() and seen == ["live"]


def test_resuming_inside_a_pack_skips_what_was_handed_out(app: Celeriac) -> None:
    _send(app, "a", "b", "c", "d", "e")  # one flush: one stream item, a pack of five
    first = EventReceiver(app, after=OLDEST)
    taken = []
    for event in first.iter(timeout=0.2):
        taken.append(event)
        if len(taken) == 2:
            break
    assert [e.task_id for e in taken] == ["a", "b"]
    assert taken[1].position.endswith(":1")  # the second event of its pack

    again = EventReceiver(app, after=taken[1].position)  # e.g. a saved position
    assert [e.task_id for e in again.iter(timeout=0.2)] == ["c", "d", "e"]
    assert [e.task_id for e in first.iter(timeout=0.2)] == ["c", "d", "e"]  # same object too


def test_positions_inside_packs_of_redis_stream_ids() -> None:
    assert _cursor("1712-5") == ("1712-5", None)
    assert _cursor("1712-5:3") == ("1712-4", ("1712-5", 3))
    assert _cursor("1712-0:0") == (f"1711-{2**64 - 1}", ("1712-0", 0))
    assert _cursor("17:2") == ("16", ("17", 2))
    assert _cursor("opaque:2") == ("opaque", None)  # unknown form: resume after the pack
