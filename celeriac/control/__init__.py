"""Remote control: commands broadcast to workers, answered with replies.

Clients (``app.control``, the CLI, the dashboard) use :class:`Control`; workers
run a :class:`WorkerRemote` (handler, listener, heartbeat) around their
:class:`WorkerHandle`. Commands travel on the broker's stream ``"control"``,
replies on ``"reply:<command id>"``; queue pauses are broker flags.
"""

from __future__ import annotations

from .client import Control, Inspect
from .handler import ControlHandler, WorkerHandle, apply_local, task_info
from .listener import ControlListener
from .pause import PausedQueues, pause_queue, paused_queues, resume_queue
from .protocol import CONTROL_STREAM, Command, Reply, reply_stream
from .registry import COMMANDS, LOCAL_COMMANDS, command
from .remote import WorkerRemote, follow_control, heartbeat_stats

__all__ = [
    "COMMANDS",
    "CONTROL_STREAM",
    "LOCAL_COMMANDS",
    "Command",
    "Control",
    "ControlHandler",
    "ControlListener",
    "Inspect",
    "PausedQueues",
    "Reply",
    "WorkerHandle",
    "WorkerRemote",
    "apply_local",
    "command",
    "follow_control",
    "heartbeat_stats",
    "pause_queue",
    "paused_queues",
    "reply_stream",
    "resume_queue",
    "task_info",
]
