"""What each pool slot is running, in memory the supervisor can read without asking.

A slot's :class:`SlotRecord` is a fixed-size C struct. For prefork it lives in
shared memory made before the child is forked, so the child publishes the task
it starts (id, name, delivery tag, start time, hard deadline) with a handful of
stores and no message to anyone, and the supervisor reads it to enforce hard
time limits, to say which task a dead child was running, and for ``inspect
active``. The threads pool uses the same record in ordinary memory. The
arguments of the running task stay in the writer's process (``Slot.job``); a
prefork supervisor asks the child for them (:mod:`celeriac.worker.inquiry`).

Writes follow a sequence lock: ``seq`` is odd while the writer is changing the
record, and a reader retries until it sees the same even ``seq`` before and
after copying. Only the slot's own consumer writes.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from multiprocessing.sharedctypes import RawValue
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .job import Job

_ID_BYTES, _NAME_BYTES, _TAG_BYTES = 128, 256, 256


class SlotRecord(ctypes.Structure):
    """The shared struct; see the module docstring for the locking rule."""

    _fields_ = [
        ("seq", ctypes.c_uint64),
        ("pid", ctypes.c_int64),
        ("ready", ctypes.c_int32),  # the consumer is connected and fetching
        ("tag_fits", ctypes.c_int32),  # 0 when the delivery tag was too long to publish
        ("held", ctypes.c_int32),  # messages the consumer holds, the running one included
        ("_pad", ctypes.c_int32),
        ("processed", ctypes.c_uint64),
        ("started", ctypes.c_double),  # wall clock, for people
        ("started_mono", ctypes.c_double),  # monotonic, for deadlines
        ("hard_deadline", ctypes.c_double),  # monotonic; 0.0 when none or idle
        ("task_id", ctypes.c_char * _ID_BYTES),
        ("task_name", ctypes.c_char * _NAME_BYTES),
        ("queue", ctypes.c_char * _NAME_BYTES),
        ("tag", ctypes.c_char * _TAG_BYTES),
    ]


@dataclass(frozen=True, slots=True)
class Running:
    """A consistent copy of what one slot is running."""

    task_id: str
    task_name: str
    queue: str
    tag: str | None  # None when it did not fit the record
    started: float
    started_mono: float
    hard_deadline: float | None


def _fit(text: str, size: int) -> tuple[bytes, bool]:
    data = text.encode("utf-8", "replace")
    return (data, True) if len(data) < size else (data[: size - 1], False)


class Slot:
    """One pool slot's record, with the writer's and the reader's operations."""

    def __init__(self, index: int, shared: bool) -> None:
        self.index = index
        self.record: Any = RawValue(SlotRecord) if shared else SlotRecord()
        # The running job, in the writer's process only (a reference, not a copy): what
        # ``inspect active`` reads for the arguments, which the record has no room for.
        self.job: Job | None = None

    # -- the writer: the slot's consumer ------------------------------------------
    def reset(self, pid: int) -> None:
        """Blank the record for a new consumer (before a replacement child starts)."""
        ctypes.memset(ctypes.addressof(self.record), 0, ctypes.sizeof(SlotRecord))
        self.record.pid = pid

    def mark_ready(self) -> None:
        self.record.ready = 1

    def begin(self, job: Job, hard_deadline: float | None) -> None:
        """Publish the task this slot starts."""
        rec, delivery = self.record, job.delivery
        rec.seq += 1
        rec.task_id = _fit(job.message.id, _ID_BYTES)[0]
        rec.task_name = _fit(job.message.task, _NAME_BYTES)[0]
        rec.queue = _fit(job.message.queue, _NAME_BYTES)[0]
        tag, fits = _fit(delivery.tag if delivery is not None else "", _TAG_BYTES)
        rec.tag, rec.tag_fits = tag, int(fits)
        rec.started, rec.started_mono = job.started_at or time.time(), time.monotonic()
        rec.hard_deadline = hard_deadline or 0.0
        rec.seq += 1
        self.job = job

    def end(self) -> None:
        """The task returned: clear it before its outcome is stored."""
        self.job = None
        rec = self.record
        rec.seq += 1
        rec.hard_deadline = 0.0
        rec.task_id = b""
        rec.processed += 1
        rec.seq += 1

    # -- the reader: supervisor, watchdog, inspect -----------------------------------
    def running(self, attempts: int = 100) -> Running | None:
        """What the slot runs now, or None when idle (or being written too long)."""
        rec = self.record
        for _ in range(attempts):
            before = rec.seq
            if before % 2:
                continue
            task_id = rec.task_id
            copy = Running(
                task_id.decode("utf-8", "replace"),
                rec.task_name.decode("utf-8", "replace"),
                rec.queue.decode("utf-8", "replace"),
                rec.tag.decode("utf-8", "replace") if rec.tag_fits else None,
                rec.started,
                rec.started_mono,
                rec.hard_deadline or None,
            )
            if rec.seq == before:
                return copy if task_id else None
        return None

    @property
    def torn(self) -> bool:
        """The writer stopped halfway through an update (it was killed)."""
        return bool(self.record.seq % 2)

    @property
    def processed(self) -> int:
        return int(self.record.processed)

    @property
    def held(self) -> int:
        return int(self.record.held)

    @property
    def pid(self) -> int:
        return int(self.record.pid)

    @property
    def ready(self) -> bool:
        return bool(self.record.ready)
