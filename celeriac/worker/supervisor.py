"""Prefork: a supervisor process and N forked children that each consume by themselves.

The supervisor runs no tasks and sits on no hot path. In one loop it

* beats for its children every third of the lease (renew their leases, recover
  other workers' expired ones);
* notices a dead child at once (its process sentinel), hands the child's
  messages back with ``release_all`` and starts a replacement (with a backoff
  if children keep dying at start);
* enforces hard time limits from the deadlines children publish in shared
  memory: kill the child, record the failure, ack, replace;
* replaces children that exit after ``max_tasks_per_child`` or over
  ``max_memory_per_child``;
* turns SIGTERM/SIGINT into a warm shutdown and a second one into a cold one.

``grow`` and ``shrink`` change the number of children at runtime; called from
another thread (remote control), they run in the supervisor's loop, because
only its thread may fork: ``PR_SET_PDEATHSIG`` fires when the *thread* that
forked a child ends.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any

from ..backoff import exponential
from ..text import counted
from .child import child_main, consumer_id
from .fairness import Board
from .heartbeat import Heartbeat
from .inquiry import Inquirer
from .lost import acked_on_receipt, record_lost
from .pool import Pool
from .slots import Running, Slot
from .timelimits import record_time_limit

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from ..app import Celeriac
    from ..backends.base import Backend
    from .options import WorkerOptions
    from .state import WorkerState

logger = logging.getLogger("celeriac.worker")

POLL_INTERVAL = 0.25  # how often hard deadlines are checked
READY_TIMEOUT = 10.0  # announce "ready" even if a child is slow to connect
CRASH_WINDOW = 2.0  # a child dying sooner than this after start counts as a crash loop
MAX_RESTART_DELAY = 30.0


@dataclass(eq=False)
class _Child:
    slot: Slot
    process: BaseProcess
    consumer_id: str
    started: float  # monotonic
    retiring: bool = False  # shrinking the pool: not replaced
    killed_for: Running | None = None  # killed at this task's hard limit


class Supervisor(Pool):
    """Runs a prefork worker until it is shut down; ``run`` returns the exit status."""

    consumers_in_children = True

    def __init__(
        self,
        app: Celeriac,
        options: WorkerOptions,
        state: WorkerState,
        announce: Callable[[str], None],
    ) -> None:
        super().__init__(app, options, state, announce)
        self.children: dict[int, _Child] = {}
        self.heartbeat = Heartbeat(app, f"supervisor {options.hostname}")
        self.inquirer = Inquirer()  # asks children what they run and hold (inspect)
        # Made before any fork, so every child reads its siblings' entries (fair dispatch).
        self.board = Board.for_pool(options.concurrency, shared=True)
        self._backend: Backend | None = None
        self._context = multiprocessing.get_context("fork")
        self._signals = 0
        self.stopping = False
        self._cold = False
        self._warm_deadline = 0.0
        self._orphans: list[str] = []  # consumers whose messages could not be handed back yet
        self._restarts: dict[int, float] = {}  # slot -> when it may start again
        self._crashes: dict[int, int] = {}
        self._ready_by: float | None = None
        self._requests: deque[Callable[[], None]] = deque()  # from other threads, run in the loop
        self._loop_thread = threading.get_ident()
        self._wake_w = -1

    # -- the loop -----------------------------------------------------------------
    def run(self) -> int:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        self._loop_thread, self._wake_w = threading.get_ident(), wake_w
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.heartbeat.connect()
            self._grow(self.options.concurrency)
            self._ready_by = time.monotonic() + READY_TIMEOUT
            while self.children or not self.stopping:
                self._step(wake_r)
            if self._orphans:
                logger.error(
                    "the broker is unreachable: what %s held returns to its queue when its "
                    "lease ends",
                    ", ".join(self._orphans),
                )
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for signum, handler in old.items():
                signal.signal(signum, handler)
            os.close(wake_r)
            os.close(wake_w)
            self._close()
        return 0

    def _step(self, wake_r: int) -> None:
        sentinels: list[Any] = [c.process.sentinel for c in self.children.values()]
        wait([*sentinels, wake_r], timeout=self._timeout())
        try:
            while os.read(wake_r, 512):
                pass
        except BlockingIOError:
            pass
        self._handle_signals()
        while self._requests:
            self._requests.popleft()()
        self._reap()
        self._enforce_time_limits()
        if self.heartbeat.due_in() <= 0:
            self._beat()
        self._retry_orphans()
        self._restart_due()
        self._announce_when_ready()
        if self.stopping and not self._cold and time.monotonic() >= self._warm_deadline:
            logger.warning(
                "warm shutdown took longer than %.0fs (worker_shutdown_timeout): cold shutdown",
                self.options.shutdown_timeout,
            )
            self._cold_shutdown()

    def _timeout(self) -> float:
        timeout = min(POLL_INTERVAL, max(0.0, self.heartbeat.due_in()))
        for when in self._restarts.values():
            timeout = min(timeout, max(0.0, when - time.monotonic()))
        return timeout

    # -- children -----------------------------------------------------------------
    def _spawn(self, slot: Slot) -> None:
        self.state.replace_consumer(slot, 0)
        line = self.inquirer.open(slot.index)
        process = self._context.Process(
            target=child_main,
            args=(
                self.app,
                self.options,
                slot,
                os.getpid(),
                line,
                self.inquirer.ends(),
                self.board,
            ),
            name=f"Child-{slot.index}",
            daemon=True,
        )
        # The child starts with SIGTERM blocked and unblocks it once its own handler is in
        # place (child_main): a stop sent while it boots is then delivered, not swallowed by
        # the supervisor's handler it inherited.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            line.close()  # the child's end, in the child now
        assert process.pid is not None
        slot.record.pid = process.pid
        self.children[slot.index] = _Child(
            slot,
            process,
            consumer_id(self.options.hostname, process.pid, slot.index),
            time.monotonic(),
        )

    def _reap(self) -> None:
        for child in list(self.children.values()):
            if not child.process.is_alive():
                self._on_exit(child)

    def _on_exit(self, child: _Child) -> None:
        index, code = child.slot.index, child.process.exitcode
        final = None if child.slot.torn else child.slot.running()  # final: the child is dead
        stopped = self.terminated.pop(child.process.pid or 0, None)
        if child.killed_for is not None:
            if final is not None and final.task_id == child.killed_for.task_id:
                self._record_time_limit(child, final)
        elif stopped is not None:  # recorded REVOKED (terminated) by the revoke command
            logger.info(
                "child %s (slot %d) stopped: task %s terminated by remote control; "
                "a new child takes its slot",
                child.process.pid,
                index,
                stopped,
            )
            code = 0  # not a crash: no restart backoff
        elif code != 0 and not self._cold:
            self._on_crash(child, code, final)
        self.board.leave(index)
        self._release(child.consumer_id)
        self.inquirer.close(index)
        del self.children[index]
        if child.retiring:
            self.state.remove_slot(index)
        elif not self.stopping:
            self._schedule_restart(child, code)

    def _on_crash(self, child: _Child, code: int | None, final: Running | None) -> None:
        """Say what a child's death means for its task, and record a lost early-ack one."""
        died = f"child {child.process.pid} (slot {child.slot.index}) died with {_exit_reason(code)}"
        if final is None:
            logger.error("%s; the messages it held go back to the queue", died)
            return
        doing = f"{died} while running {final.task_name}[{final.task_id}]"
        if not acked_on_receipt(self.app, final):
            logger.error("%s; its messages go back to the queue, that task runs again", doing)
            return
        try:
            if self._backend is None:
                self._backend = self.app.connect_backend()
            state = record_lost(
                self.app,
                self.heartbeat.connect(),
                self._backend,
                final,
                self.options.hostname,
                f"died with {_exit_reason(code)}",
            )
        except Exception:
            logger.exception(
                "%s, acknowledged on receipt (acks_late=False): it is not run again and its "
                "outcome could not be recorded",
                doing,
            )
            return
        outcome = "REVOKED (terminated)" if state == "REVOKED" else "FAILURE (WorkerLostError)"
        logger.error(
            "%s, acknowledged on receipt (acks_late=False): it is not run again, recorded "
            "as %s; the other messages the child held go back to the queue",
            doing,
            outcome,
        )

    def _schedule_restart(self, child: _Child, code: int | None) -> None:
        index = child.slot.index
        lived = time.monotonic() - child.started
        if code != 0 and lived < CRASH_WINDOW:
            crashes = self._crashes[index] = self._crashes.get(index, 0) + 1
            delay = exponential(crashes - 1, first=0.5, cap=MAX_RESTART_DELAY)
            logger.error(
                "child of slot %d died %.1fs after it started (%d in a row): restarting in %.1fs",
                index,
                lived,
                crashes,
                delay,
            )
            self._restarts[index] = time.monotonic() + delay
        else:
            self._crashes.pop(index, None)
            self._spawn(child.slot)

    def _restart_due(self) -> None:
        now = time.monotonic()
        for index, when in list(self._restarts.items()):
            if when <= now:
                del self._restarts[index]
                if not self.stopping and index in self.state.slots:
                    self._spawn(self.state.slots[index])

    def _release(self, consumer: str) -> None:
        if self._broker_gone():
            self._orphans.append(consumer)
            return
        try:
            count = self.heartbeat.connect().release_all(consumer)
        except ConnectionError as exc:
            self.heartbeat.outage.noted(exc)
            self._orphans.append(consumer)
            return
        try:  # its concurrency slots too, or they would wait for their lease to end
            self.heartbeat.end_holds([consumer])
        except Exception:
            logger.warning("could not free the concurrency slots of %s", consumer, exc_info=True)
        if count:
            logger.warning("handed back %s held by %s", counted(count, "message"), consumer)

    def _beat(self) -> None:
        if self._broker_gone() and all(c.slot.running() is None for c in self.children.values()):
            # Stopping, nothing runs, the broker does not answer: no lease needs keeping,
            # and a beat could hold the loop (and the exit) for the socket's timeout.
            self.heartbeat.next_at = time.monotonic() + self.heartbeat.interval
            return
        self.heartbeat.beat([c.consumer_id for c in self.children.values()])

    def _broker_gone(self) -> bool:
        """Stopping, and a broker call failed since the outage began: calls that only hand
        back what stopped children might still hold are not tried again (each could
        wait for the socket's timeout); those messages return when their lease ends."""
        return self.stopping and self.heartbeat.outage.since is not None

    def _retry_orphans(self) -> None:
        if self._broker_gone():
            return
        orphans, self._orphans = self._orphans, []
        for consumer in orphans:
            self._release(consumer)

    # -- time limits ----------------------------------------------------------------
    def _enforce_time_limits(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if child.killed_for is not None:
                continue
            running = child.slot.running()
            if running is not None and running.hard_deadline and now >= running.hard_deadline:
                child.killed_for = running
                logger.error(
                    "task %s[%s] ran past its hard time limit: killing child %s",
                    running.task_name,
                    running.task_id,
                    child.process.pid,
                )
                child.process.kill()

    def _record_time_limit(self, child: _Child, running: Running) -> None:
        try:
            if self._backend is None:
                self._backend = self.app.connect_backend()
            record_time_limit(
                self.heartbeat.connect(),
                self._backend,
                child.consumer_id,
                running,
                self.options.hostname,
                app=self.app,
            )
        except Exception:  # the message goes back and runs again: nothing is lost
            logger.exception("the time limit of task %s could not be recorded", running.task_id)

    # -- size ---------------------------------------------------------------------------
    def grow(self, n: int = 1) -> int:
        """Add ``n`` children; returns the pool size."""
        return self._in_loop(self._grow, n)

    def shrink(self, n: int = 1) -> int:
        """Retire up to ``n`` children (one always stays), each after its running task;
        returns how many retire."""
        return self._in_loop(self._shrink, n)

    def _grow(self, n: int) -> int:
        for _ in range(n):
            index = next(i for i in range(len(self.state.slots) + 1) if i not in self.state.slots)
            slot = Slot(index, shared=True)
            self.state.add_slot(slot)
            self._spawn(slot)
        return self.state.pool_size

    def _shrink(self, n: int) -> int:
        active = [c for c in self.children.values() if not c.retiring]
        retire = sorted(active, key=lambda c: c.slot.index)[max(1, len(active) - n) :]
        for child in retire:
            child.retiring = True
            _signal(child, signal.SIGTERM)
        return len(retire)

    def _in_loop(self, action: Callable[[int], int], n: int, timeout: float = 10.0) -> int:
        if threading.get_ident() == self._loop_thread:
            return action(n)
        done, outcome = threading.Event(), [0]

        def request() -> None:
            try:
                outcome[0] = action(n)
            finally:
                done.set()

        self._requests.append(request)
        os.write(self._wake_w, b"\0")
        if not done.wait(timeout):
            raise TimeoutError(f"the supervisor did not act within {timeout}s")
        return outcome[0]

    # -- inspection (from the control thread) ----------------------------------------
    def ask_children(self, question: str, argument: Any = None) -> dict[int, Any]:
        """``"active"``, ``"reserved"`` or ``"give_back"`` (task ids): each child's answer,
        by slot index.

        A child that does not answer within ``ANSWER_TIMEOUT`` is left out (see
        :mod:`celeriac.worker.inquiry`).
        """
        return self.inquirer.ask(question, argument=argument)

    # -- shutdown -----------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals += 1  # the loop acts on it: handlers only count

    def _handle_signals(self) -> None:
        if self._signals >= 1 and not self.stopping:
            self.stopping = True
            self._warm_deadline = time.monotonic() + self.options.shutdown_timeout
            logger.warning(
                "warm shutdown: finishing running tasks (up to %.0fs); signal again "
                "for a cold shutdown",
                self.options.shutdown_timeout,
            )
            self._restarts.clear()
            for child in self.children.values():
                _signal(child, signal.SIGTERM)
        if self._signals >= 2 and not self._cold:
            logger.warning("cold shutdown: stopping children now")
            self._cold_shutdown()

    def _cold_shutdown(self) -> None:
        self._cold = True
        for child in self.children.values():
            _signal(child, signal.SIGKILL)
        for child in list(self.children.values()):
            child.process.join(5.0)
            self._on_exit(child)

    def _announce_when_ready(self) -> None:
        if self._ready_by is None:
            return
        if all(c.slot.ready for c in self.children.values()) or time.monotonic() > self._ready_by:
            self._ready_by = None
            self.announce_ready(
                f"{self.options.hostname} ready: "
                f"{counted(len(self.children), 'prefork child', 'prefork children')} "
                f"consuming {', '.join(self.options.queues)}"
            )

    def _close(self) -> None:
        self.inquirer.close_all()
        self.heartbeat.close()
        if self._backend is not None:
            self._backend.close()


def _signal(child: _Child, signum: int) -> None:
    try:
        if child.process.pid is not None:
            os.kill(child.process.pid, signum)
    except ProcessLookupError:
        pass


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
