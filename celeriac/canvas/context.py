"""What building the messages of one workflow shares: the app, the lineage, task lookups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..task import Task


@dataclass
class Context:
    """What building the messages of one workflow shares: app, lineage, task lookups."""

    app: Celeriac
    parent_id: str | None = None
    root_id: str | None = None
    check_arguments: bool = True
    _tasks: dict[str, Task[Any, Any]] = field(default_factory=dict)

    def task(self, name: str) -> Task[Any, Any]:
        """The registered task, or a stand-in that can send (not run) one by name."""
        found = self.app.tasks.get(name) or self._tasks.get(name)
        if found is None:
            found = self._tasks[name] = self.app.sendable_task(name)
        return found


__all__ = ["Context"]
