"""Reserved messages where only the workers know them, listed from the workers' answers.

A broker whose ``browse`` says ``reserved_in_workers`` (RabbitMQ: prefetched
messages sit on each worker's channel, and RabbitMQ shows nobody which) cannot
list what the workers hold. The live workers can: each answers ``inspect
reserved`` with what its consumers prefetched and have not started. So
``celeriac queues show Q --reserved``, the dashboard's queue page and its API
list those answers, kept to the queue asked for:

* a page is as fresh as the answers: a worker that does not answer within the
  timeout (it is gone, or stuck) is left out, and a message started meanwhile
  is listed once more;
* **delete** revokes the messages listed as held (durably, as ``revoke``
  does): the worker holding one skips it when its turn comes, records it
  REVOKED, and acks it;
* **requeue** asks the holding worker to give the messages back (the
  ``give_back`` command): they go to the back of their queue, uncounted, for
  any worker to take. A message its worker started meanwhile is not given back;
  when none was, the worker's reason is the error (the asyncio pool refuses).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import CapabilityUnavailable
from .client import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from ..app import Celeriac

SOURCE = "the live workers' own answers (inspect reserved)"


class HeldByWorkers:
    """A queue's reserved messages as the live workers report them, and acts on them."""

    def __init__(self, app: Celeriac, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.app = app
        self.timeout = timeout

    def entries(self, queue: str) -> list[dict[str, Any]]:
        """Every message of ``queue`` a live worker holds unstarted, by when it was taken."""
        answers = self.app.control.inspect(timeout=self.timeout).reserved() or {}
        found = [
            _entry(host, position, info)
            for host, listed in sorted(answers.items())
            if isinstance(listed, list)
            for position, info in enumerate(listed)
            if isinstance(info, dict) and info.get("queue") == queue
        ]
        found.sort(key=lambda e: (e["since"] or 0.0, e["holder"], e["position"]))
        return found

    def page(
        self, queue: str, limit: int, offset: int, newest_first: bool
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many there are and a page of them (oldest taken first unless ``newest_first``)."""
        found = self.entries(queue)
        if newest_first:
            found.reverse()
        return len(found), found[offset : offset + limit]

    def revoke(self, queue: str, ids: Sequence[str]) -> int:
        """Revoke those of ``ids`` a worker holds in ``queue``: how many."""
        held = {e["id"] for e in self.entries(queue)}
        chosen = [task_id for task_id in dict.fromkeys(ids) if task_id in held]
        if chosen:
            self.app.control.revoke(chosen)
        return len(chosen)

    def give_back(self, queue: str, ids: Sequence[str]) -> int:
        """Ask the workers holding those of ``ids`` in ``queue`` to give them back: how many
        they gave back. When none was, and a worker said why, a CapabilityUnavailable with
        its words."""
        holders: dict[str, list[str]] = {}
        for entry in self.entries(queue):
            if entry["id"] in ids:
                holders.setdefault(entry["holder"], []).append(entry["id"])
        given = 0
        refusals: list[str] = []
        for host, held in holders.items():
            replies = self.app.control.broadcast(
                "give_back",
                {"task_ids": held, "queue": queue},
                destination=[host],
                reply=True,
                timeout=self.timeout,
            )
            for reply in replies:
                answer = reply.get(host)
                if isinstance(answer, dict):
                    given += len(answer.get("given_back") or ())
                    if answer.get("error"):
                        refusals.append(f"{host}: {answer['error']}")
        if not given and refusals:
            raise CapabilityUnavailable("; ".join(refusals))
        return given


def _entry(host: str, position: int, info: dict[str, Any]) -> dict[str, Any]:
    """A worker's ``inspect reserved`` entry in the shape of a listed message."""
    entry: dict[str, Any] = {
        "id": str(info.get("id")),
        "queue": info.get("queue"),
        "kind": "reserved",
        "priority": info.get("priority"),
        "deliveries": info.get("deliveries"),
        "since": info.get("since"),
        "eta": info.get("eta"),
        "holder": host,
        "position": position,
    }
    if info.get("name") is None:
        entry["undecodable"] = str(info.get("error") or "cannot be decoded")
    else:
        entry.update(
            task=info["name"],
            args=info.get("args"),
            kwargs=info.get("kwargs"),
            retries=info.get("retries"),
        )
        if info.get("truncated"):
            entry["truncated"] = info["truncated"]
    return entry


__all__ = ["SOURCE", "HeldByWorkers"]
