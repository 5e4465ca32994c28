"""What a contract test knows about the broker under test: how to connect to it, fresh."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from celeriac.brokers.base import Broker

LEASE = 0.5  # a short lease keeps lease tests fast; renewals run every third of it


@dataclass
class BrokerEnv:
    """How to open connections to one fresh, isolated broker; picklable for child processes."""

    factory: str  # "module:Class", called as Class(url, lease_seconds=, max_deliveries=, **options)
    url: str
    options: dict[str, Any] = field(default_factory=dict)
    prefix: str = ""  # queue names start with it (isolation on a shared server)
    spans_processes: bool = True  # connections from other processes see the same broker
    # leases: a holder's lease can run out while it lives, and release_all of another
    # process's consumer returns its messages; exact_stats: stats count waiting per
    # priority, delayed and in flight; global_priority: strict across a fetch's queues;
    # browse: its waiting, delayed and reserved messages can be listed and acted on;
    # browse_delayed, browse_waiting: its delayed, its waiting ones can (RabbitMQ: those
    # two; its workers alone know what they reserved, docs/rabbitmq.md);
    # forget_queue: an empty queue can be dropped from the list (RabbitMQ keeps them);
    # wake: a fetch waiting for work returns soon after its wake is set (the memory
    # broker's wait is a Condition, which a signal handler cannot notify).
    # Capabilities (streams, flags, ...) are not listed: the broker object says which
    # it offers (test_capabilities.py).
    features: frozenset[str] = frozenset(
        {
            "leases",
            "exact_stats",
            "global_priority",
            "browse",
            "browse_delayed",
            "browse_waiting",
            "forget_queue",
            "wake",
        }
    )
    _opened: list[Broker] = field(default_factory=list, repr=False)

    def q(self, name: str) -> str:
        """The queue name ``name`` in this test's namespace."""
        return f"{self.prefix}{name}"

    def connect(self, lease_seconds: float = LEASE, max_deliveries: int = 5) -> Broker:
        """A new connection (a new broker object) to this test's broker."""
        module, _, attr = self.factory.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        broker: Broker = cls(
            self.url, lease_seconds=lease_seconds, max_deliveries=max_deliveries, **self.options
        )
        self._opened.append(broker)
        return broker

    def close(self) -> None:
        for broker in self._opened:
            broker.close()
        self._opened.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_opened"] = []
        return state
