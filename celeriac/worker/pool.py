"""What every worker pool offers: run until shut down, and answer remote control.

Remote control (:class:`~celeriac.control.state_handle.StateHandle`) asks the
running pool what its consumers hold and run, to change its size, and to stop
a task. Every question has a declared answer here, so a pool that cannot do
something says so by what it answers (a fixed-size pool refuses ``grow`` with
an error that says what to do), never by a missing method:

=========  ====================  ==============  ==========================
pool       consumers run in      grow / shrink   terminate
=========  ====================  ==============  ==========================
prefork    child processes       yes             kills the task's child
threads    this process          refused         cannot (a thread)
solo       this process          refused         cannot (the main thread)
asyncio    this process          refused         cancels the coroutine
=========  ====================  ==============  ==========================
"""

from __future__ import annotations

import os
import signal as signals
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, ClassVar

from ..exceptions import CeleriacError

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..message import Delivery
    from .options import WorkerOptions
    from .state import WorkerState


def signal_number(name: str | int) -> int:
    """``"SIGKILL"``, ``"KILL"``, ``"9"`` or ``9`` -> 9; a clear error otherwise."""
    text = str(name).upper()
    if text.isdigit():
        return int(text)
    try:
        return int(signals.Signals[text if text.startswith("SIG") else f"SIG{text}"])
    except KeyError:
        raise ValueError(
            f"unknown signal {name!r}: use a name such as SIGTERM or SIGKILL"
        ) from None


class Pool(ABC):
    """A worker pool: its consumers, run until shutdown, as the runner and remote control
    see it."""

    #: True where the consumers run in child processes (prefork): what they run and
    #: hold is asked of them (``ask_children``); False where they run in this process
    #: and are read directly (the slot records, ``reserved_deliveries``).
    consumers_in_children: ClassVar[bool] = False

    def __init__(
        self,
        app: Celeriac,
        options: WorkerOptions,
        state: WorkerState,
        announce: Callable[[str], None],
    ) -> None:
        self.app, self.options, self.state, self.announce = app, options, state, announce
        # pid -> task id, for processes stopped by terminate: their exit is no crash
        self.terminated: dict[int, str] = {}

    @abstractmethod
    def run(self) -> int:
        """Consume until shut down; returns the exit status."""

    def announce_ready(self, text: str) -> None:
        """Every consumer is ready: run the ``worker_ready`` middleware hooks, then say so."""
        for hook in self.app.middleware.worker_ready:
            hook(self.app, self.state)
        self.announce(text)

    def reserved_deliveries(self) -> list[Delivery]:
        """Messages this process's consumers prefetched and have not started."""
        return []

    def reserved_since(self) -> list[tuple[Delivery, float | None]]:
        """:meth:`reserved_deliveries`, each with when its consumer fetched it (None where
        the pool does not know)."""
        return [(delivery, None) for delivery in self.reserved_deliveries()]

    def ask_children(self, question: str, argument: Any = None) -> dict[int, Any]:
        """Each child's answer to ``"active"``, ``"reserved"`` or ``"give_back"`` (task
        ids), by slot index."""
        return {}

    def give_back(self, ids: Collection[str]) -> list[str]:
        """Give back these of the messages this process's consumers prefetched and have
        not started (remote control); the ids given back. A pool that cannot refuses."""
        raise CeleriacError(
            f"the {self.options.pool} pool does not give back prefetched messages: revoke "
            "one so that it does not run, or stop the worker (a warm shutdown gives back "
            "what it has not started)"
        )

    def grow(self, n: int) -> int:
        """Add ``n`` consumers; returns the pool size. A pool of fixed size refuses."""
        raise self._fixed_size("grow")

    def shrink(self, n: int) -> int:
        """Retire up to ``n`` consumers after their running tasks; returns how many retire.
        A pool of fixed size refuses."""
        raise self._fixed_size("shrink")

    def _fixed_size(self, verb: str) -> CeleriacError:
        return CeleriacError(
            f"the {self.options.pool} pool cannot {verb} at runtime: restart the worker with "
            "another -c (prefork can)"
        )

    def terminate(self, task_id: str, signal: str) -> bool:
        """Stop ``task_id`` if it runs here: signal the process of its slot.

        True when the signal was sent; False when no slot runs the task, or when the
        slot's consumer runs in this process (a thread cannot be killed).
        """
        number = signal_number(signal)
        if number == signals.SIGTERM:
            # A prefork child takes SIGTERM as "finish your task, then stop": the opposite
            # of what terminate asks. Kill it; the supervisor replaces it.
            number = signals.SIGKILL
        for slot in list(self.state.slots.values()):
            running = slot.running()
            if running is None or running.task_id != task_id:
                continue
            if not slot.pid or slot.pid == os.getpid():
                return False
            self.terminated[slot.pid] = task_id
            try:
                os.kill(slot.pid, number)
            except ProcessLookupError:
                self.terminated.pop(slot.pid, None)
                return False
            return True
        return False


__all__ = ["Pool", "signal_number"]
