"""What the cluster holds, queue by queue: counts, consumers, pauses, dead letters.

``celeriac queues``, ``celeriac dead-letters list`` and the dashboard show the
same rows, made here from the broker's queue stats, the workers' presence and
the cluster-wide pause flags.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..events.worker import read_presence
from ..message import decode
from .pause import paused_queues

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..brokers.base import DeadLetter, QueueStats


def known_queues(app: Celeriac) -> tuple[list[str], dict[str, list[str]], set[str]]:
    """Every queue (in the broker, consumed by a live worker, or paused), sorted; the live
    consumers of each; the paused ones."""
    broker = app.broker
    consumers: dict[str, list[str]] = {}
    for worker in read_presence(broker):
        if worker.alive:
            for queue in worker.get("queues") or []:
                consumers.setdefault(queue, []).append(worker.hostname)
    paused = set(paused_queues(broker))
    names = sorted(set(broker.queues()) | set(consumers) | paused)
    return names, consumers, paused


def queue_row(stats: QueueStats, consumers: list[str], paused: bool) -> dict[str, Any]:
    """One queue as plain data: waiting (in all and per priority), delayed, in flight, dead,
    oldest age, consumers, paused."""
    return {
        "queue": stats.queue,
        "waiting": stats.total_waiting,
        "by_priority": {str(p): n for p, n in sorted(stats.waiting.items(), reverse=True) if n},
        "delayed": stats.delayed,
        "in_flight": stats.in_flight,
        "dead": stats.dead,
        "oldest_age": stats.oldest_age,
        "consumers": consumers,
        "paused": paused,
    }


def queue_rows(app: Celeriac) -> list[dict[str, Any]]:
    """A :func:`queue_row` for every queue :func:`known_queues` finds."""
    names, consumers, paused = known_queues(app)
    return [queue_row(app.broker.stats(q), consumers.get(q, []), q in paused) for q in names]


def remove_queue(app: Celeriac, queue: str) -> None:
    """Stop listing an empty, unconsumed, unpaused queue; a ValueError saying what keeps it."""
    _, consumers, paused = known_queues(app)
    if queue in paused:
        raise ValueError(f"queue {queue} is paused: resume it before removing it")
    if consumers.get(queue):
        raise ValueError(
            f"queue {queue} is consumed by {', '.join(consumers[queue])}: cancel those "
            "consumers (or stop those workers) before removing it"
        )
    if not app.broker.forget_queue(queue):
        raise ValueError(
            f"queue {queue} still holds messages, or this broker keeps it "
            "(RabbitMQ's declared queues: delete it with rabbitmqctl): nothing removed"
        )


def describe_dead_letter(app: Celeriac, dead: DeadLetter) -> dict[str, Any]:
    """A dead letter as plain data, with its task and arguments when it can be decoded."""
    info: dict[str, Any] = {
        "id": dead.id,
        "queue": dead.queue,
        "priority": dead.priority,
        "reason": dead.reason,
        "deliveries": dead.deliveries,
        "dead_at": dead.dead_at,
    }
    try:
        message = decode(dead.body, app.codec, dead)
        info.update(task=message.task, args=list(message.args), kwargs=message.kwargs)
    except Exception as exc:  # an undecodable message is exactly what lands here
        info["undecodable"] = str(exc)
        body = dead.body[:200]
        info["body"] = repr(body) + ("..." if len(dead.body) > 200 else "")
    return info


__all__ = ["describe_dead_letter", "known_queues", "queue_row", "queue_rows", "remove_queue"]
