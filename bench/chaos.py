"""The chaos suite: drain tasks through real workers while faults are injected, count.

    python bench/chaos.py                                  # every broker, every fault
    python bench/chaos.py --broker redis --fault connkill --tasks 20000
    python bench/chaos.py --broker sqlite --fault child --fault malformed --together

Each run publishes ``--tasks`` tasks, starts ``--workers`` prefork workers (results
stored in the same SQLite file or Redis server; on RabbitMQ, in a SQLite file) and
injects its faults until every task ran. A task appends "<index> <pid>" to a record file
(``O_APPEND``: a line survives its process's ``kill -9``), so the driver counts what
ran: *done* (distinct tasks), *lost* (sent, never ran), *duplicated* (extra runs) and
how many of those ran in a process that was killed (a task killed after its work and
before its ack runs again: the contract is at least once). Malformed entries sent
besides are expected in the dead letters (*dead*), never run.

Faults:

``child``       kill -9 a random prefork child every second
``supervisor``  kill -9 a whole worker (supervisor and children) every 2.5 s, start another
``restart``     kill -9 the broker and start it again, twice: Redis (AOF), and RabbitMQ
                on a node of the run's own (``rabbitmq-server`` with its own name, ports
                and files); the SQLite file has no server to restart
``connkill``    close every client connection: Redis every 0.1 s (CLIENT KILL), RabbitMQ
                every 2 s (rabbitmqctl close_all_connections in the private vhost)
``malformed``   ``--malformed`` bad bodies (wrong shapes, not JSON) among the tasks,
                and on Redis raw entries that are not celeriac's

Brokers, each private to the run: SQLite (a file in a temporary directory), Redis (a
``redis-server`` it starts on a free port, AOF fsynced on every write), RabbitMQ (a
virtual host it creates with ``rabbitmqctl``, deleted at the end).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from celeriac import Celeriac
from celeriac.message import Envelope, Message

FAULTS = ("child", "supervisor", "restart", "connkill", "malformed")
BROKERS = ("sqlite", "redis", "rabbitmq")
QUEUE = "celeriac"
LEASE = 4.0  # seconds: what a killed worker held is back within a lease

APP = """
import os
import time

from celeriac import Celeriac

app = Celeriac(
    "chaosapp",
    broker=os.environ["CHAOS_BROKER"],
    backend=os.environ["CHAOS_BACKEND"],
    broker_transport_options={"visibility_timeout": float(os.environ["CHAOS_LEASE"])},
    worker_send_task_events=False,
    worker_shutdown_timeout=10,
)
RECORD = os.environ["CHAOS_RECORD"]


@app.task(name="chaos.record")
def record(index, work_ms=0):
    if work_ms:
        time.sleep(work_ms / 1000)
    fd = os.open(RECORD, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"%d %d\\n" % (index, os.getpid()))
    finally:
        os.close(fd)
"""


# -- brokers ---------------------------------------------------------------------------
class BrokerServer:
    """A broker of the run's own: its URL, and what it can do to itself."""

    name = ""
    url = ""
    results_url = ""  # where the workers store results (a task that finished is not rerun)
    restartable = False

    def restart(self) -> None:
        raise NotImplementedError

    def kill_connections(self) -> int:
        return 0

    def connkill_interval(self) -> float:
        return 0.1

    def close(self) -> None:
        pass


class SQLiteServer(BrokerServer):
    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.url = self.results_url = f"sqlite:///{workdir}/broker.sqlite3"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer(BrokerServer):
    name = "redis"
    restartable = True

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH")
        import redis  # the bench's own look at the server: not celeriac's client

        self.port = _free_port()
        self.dir = workdir / "redis"
        self.dir.mkdir()
        self.command = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes", "--appendfsync", "always",
        ]  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.results_url = f"redis://127.0.0.1:{self.port}/1"
        self.admin = redis.Redis(port=self.port, socket_timeout=5)
        self.process: subprocess.Popen[bytes] | None = None
        self._start()

    def _start(self) -> None:
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.admin.ping():
                    return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def restart(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        time.sleep(0.5)  # the outage: half a second without a server
        self._start()

    def kill_connections(self) -> int:
        try:
            return int(self.admin.client_kill_filter(_type="normal", skipme=True))
        except Exception:
            return 0

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.admin.close()


def rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}")
    return done.stdout


class RabbitServer(BrokerServer):
    name = "rabbitmq"

    def __init__(self, workdir: Path) -> None:
        if shutil.which("rabbitmqctl") is None:
            raise RuntimeError("rabbitmqctl is not on PATH: it creates the run's virtual host")
        host = os.environ.get("CHAOS_AMQP_HOST", "127.0.0.1")
        self.vhost = f"chaos-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        rabbitmqctl("add_vhost", self.vhost)
        rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        self.url = f"amqp://guest:guest@{host}:5672/{self.vhost}"
        self.results_url = f"sqlite:///{workdir}/results.sqlite3"

    def connkill_interval(self) -> float:
        return 2.0

    def kill_connections(self) -> int:
        try:
            rabbitmqctl("close_all_connections", "-p", self.vhost, "chaos: connection kill")
            return 1
        except (RuntimeError, subprocess.TimeoutExpired):
            return 0

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            rabbitmqctl("delete_vhost", self.vhost)


class PrivateRabbitServer(BrokerServer):
    """A RabbitMQ node of the run's own (``rabbitmq-server`` with its own name, ports and
    files in the run's directory), so that it can be killed and started again."""

    name = "rabbitmq"
    restartable = True

    def __init__(self, workdir: Path) -> None:
        if shutil.which("rabbitmq-server") is None:
            raise RuntimeError("rabbitmq-server is not on PATH: the restart needs a node")
        self.dir = workdir / "rabbitmq"
        self.dir.mkdir()
        os.chmod(workdir, 0o755)  # the server may run as the rabbitmq user
        os.chmod(self.dir, 0o777)
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "env.conf").write_text("")
        self.port, dist = _free_port(), _free_port()
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        d = str(self.dir)
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": f"chaos{os.getpid()}{self.port}@localhost",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist),
            "RABBITMQ_CONF_ENV_FILE": f"{d}/env.conf",
            "RABBITMQ_CONFIG_FILE": f"{d}/rabbitmq.conf",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{d}/enabled_plugins",
            "RABBITMQ_MNESIA_BASE": f"{d}/mnesia",
            "RABBITMQ_LOG_BASE": f"{d}/log",
            "RABBITMQ_PID_FILE": f"{d}/pid",
            "RABBITMQ_FEATURE_FLAGS_FILE": f"{d}/feature_flags",
            "RABBITMQ_QUORUM_DIR": f"{d}/quorum",
            "RABBITMQ_STREAM_DIR": f"{d}/stream",
        }
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        self.results_url = f"sqlite:///{workdir}/results.sqlite3"
        self._start()

    def _start(self) -> None:
        log = open(self.dir / "server.out", "ab")  # noqa: SIM115 - lives with the process
        subprocess.Popen(
            ["rabbitmq-server"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the private RabbitMQ node did not start: see {self.dir}")
            time.sleep(0.2)

    def _kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.dir / "pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)

    def restart(self) -> None:
        self._kill()
        self._start()

    def connkill_interval(self) -> float:
        return 2.0

    def kill_connections(self) -> int:
        node = self.env["RABBITMQ_NODENAME"]
        try:
            rabbitmqctl("-n", node, "close_all_connections", "-p", "/", "chaos: connection kill")
            return 1
        except (RuntimeError, subprocess.TimeoutExpired):
            return 0

    def close(self) -> None:
        self._kill()


SERVERS: dict[str, Callable[[Path], BrokerServer]] = {
    "sqlite": SQLiteServer,
    "redis": RedisServer,
    "rabbitmq": RabbitServer,
}


# -- workers -------------------------------------------------------------------------------
class Workers:
    """Prefork worker processes, each in its own process group."""

    def __init__(self, workdir: Path, env: dict[str, str], concurrency: int) -> None:
        self.workdir, self.env, self.concurrency = workdir, env, concurrency
        self.running: list[subprocess.Popen[bytes]] = []
        self.killed_pids: set[int] = set()
        self.started = 0

    def start(self) -> None:
        self.started += 1
        log = open(self.workdir / f"worker-{self.started}.log", "wb")  # noqa: SIM115
        command = [
            sys.executable, "-m", "celeriac", "-A", "chaosapp", "worker",
            "-P", "prefork", "-c", str(self.concurrency), "-l", "WARNING",
            "-n", f"chaos{self.started}@%h",
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.running.append(process)

    def children(self, process: subprocess.Popen[bytes]) -> list[int]:
        path = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        with contextlib.suppress(OSError):
            return [int(p) for p in path.read_text().split()]
        return []

    def kill_child(self) -> bool:
        alive = [p for p in self.running if p.poll() is None]
        random.shuffle(alive)
        for process in alive:
            children = self.children(process)
            if children:
                pid = random.choice(children)
                self.killed_pids.add(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                return True
        return False

    def kill_worker(self) -> None:
        """kill -9 a whole worker (as a machine would die), and start another."""
        alive = [p for p in self.running if p.poll() is None]
        if not alive:
            return
        process = random.choice(alive)
        self.killed_pids.update([process.pid, *self.children(process)])
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self.running.remove(process)
        self.start()

    def stop(self) -> None:
        for process in self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # children left behind, if any


# -- one run -----------------------------------------------------------------------------
@dataclass
class Outcome:
    """What one run counted."""

    broker: str
    faults: tuple[str, ...]
    sent: int = 0
    done: int = 0
    lost: int = 0
    duplicated: int = 0
    duplicated_killed: int = 0  # extra runs of tasks one of whose runs was in a killed process
    malformed: int = 0
    dead: int = 0
    seconds: float = 0.0
    injected: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        """No loss, every malformed entry dead-lettered, no duplicate without a kill."""
        unexplained = self.duplicated - self.duplicated_killed
        kills = {"supervisor", "restart", "connkill"} & set(self.faults)
        return self.lost == 0 and self.dead == self.malformed and (unexplained == 0 or bool(kills))


def _malformed_bodies(count: int) -> list[bytes]:
    shapes: list[dict[str, Any]] = [
        {"args": {"a": 1}},
        {"expires": "tomorrow"},
        {"headers": ["a"]},
        {"chord": "chaos.record"},
        {"callbacks": [1, 2]},
        {"kwargs": [1]},
        {"retries": "3"},
    ]
    bodies = []
    for i in range(count):
        if i % 8 == 7:
            bodies.append(b"\xff\xfenot a message %d" % i)
        else:
            body = {"v": 1, "task": "chaos.record", "args": [-1 - i], "sent_at": time.time()}
            bodies.append(orjson.dumps({**body, **shapes[i % 7]}))
    return bodies


def _publish(app: Celeriac, tasks: int, work_ms: int, malformed: int, server: BrokerServer) -> int:
    """Publish the tasks, with malformed entries spread among them; how many malformed."""
    bad = _malformed_bodies(malformed)
    every = max(1, tasks // max(1, len(bad)))
    batch: list[Message] = []
    sent_bad = 0
    for i in range(tasks):
        batch.append(
            Message(
                id=f"chaos-{i}",
                task="chaos.record",
                args=(i, work_ms),
                queue=QUEUE,
                sent_at=time.time(),
            )
        )
        if bad and i % every == every - 1:
            app.publish(batch)
            batch = []
            body = bad.pop()
            app.broker.publish([Envelope(f"bad-{uuid.uuid4().hex[:8]}", QUEUE, 5, body)])
            sent_bad += 1
        if len(batch) >= 1000:
            app.publish(batch)
            batch = []
    if batch:
        app.publish(batch)
    if malformed and isinstance(server, RedisServer):  # entries that are not celeriac's
        base = app.broker.base(QUEUE)  # type: ignore[attr-defined]
        server.admin.rpush(f"{base}:p5", b"not an entry", b"5:0:1:4:\xff\xfe\xfd\xfcbody")
        sent_bad += 2
    return sent_bad


def _count(record: Path) -> tuple[Counter[int], dict[int, set[int]]]:
    runs: Counter[int] = Counter()
    pids: dict[int, set[int]] = {}
    if record.exists():
        for line in record.read_bytes().splitlines():
            parts = line.split()
            if len(parts) == 2:
                index, pid = int(parts[0]), int(parts[1])
                runs[index] += 1
                pids.setdefault(index, set()).add(pid)
    return runs, pids


def run(
    broker: str,
    faults: tuple[str, ...],
    tasks: int = 2000,
    workers: int = 2,
    concurrency: int = 2,
    work_ms: int = 2,
    malformed: int = 50,
    timeout: float = 300.0,
    say: Callable[[str], None] = lambda text: None,
) -> Outcome:
    """One drain of ``tasks`` under ``faults`` on a private ``broker``; what it counted."""
    outcome = Outcome(broker, faults)
    with tempfile.TemporaryDirectory(prefix=f"chaos-{broker}-") as tmp:
        workdir = Path(tmp)
        (workdir / "chaosapp.py").write_text(APP)
        record = workdir / "record.txt"
        private = broker == "rabbitmq" and "restart" in faults
        server = PrivateRabbitServer(workdir) if private else SERVERS[broker](workdir)
        try:
            _drain(server, workdir, record, outcome, tasks, workers, concurrency, work_ms,
                   malformed if "malformed" in faults else 0, timeout, say)  # fmt: skip
        finally:
            server.close()
    return outcome


def _drain(
    server: BrokerServer,
    workdir: Path,
    record: Path,
    outcome: Outcome,
    tasks: int,
    workers: int,
    concurrency: int,
    work_ms: int,
    malformed: int,
    timeout: float,
    say: Callable[[str], None],
) -> None:
    env = {
        **os.environ,
        # the app's folder, then the caller's path: workers run the checkout it runs
        "PYTHONPATH": os.pathsep.join(filter(None, [str(workdir), os.environ.get("PYTHONPATH")])),
        "CHAOS_BROKER": server.url,
        "CHAOS_BACKEND": server.results_url,
        "CHAOS_LEASE": str(LEASE),
        "CHAOS_RECORD": str(record),
    }
    app = Celeriac(
        "chaos-driver",
        broker=server.url,
        backend="disabled://",
        set_as_current=False,
        broker_transport_options={"visibility_timeout": LEASE},
        worker_send_task_events=False,
    )
    pool = Workers(workdir, env, concurrency)
    stop = threading.Event()
    try:
        outcome.malformed = _publish(app, tasks, work_ms, malformed, server)
        outcome.sent = tasks
        started = time.monotonic()
        for _ in range(workers):
            pool.start()
        injectors = _injectors(outcome, server, pool, stop, tasks, record)
        for thread in injectors:
            thread.start()
        deadline = started + timeout
        while time.monotonic() < deadline:
            runs, _ = _count(record)
            if len(runs) >= tasks:
                break
            time.sleep(0.2)
        outcome.seconds = time.monotonic() - started
        stop.set()
        for thread in injectors:
            thread.join(30)
        pool.stop()  # a warm stop: a run under way when the last task finished ends first
        runs, pids = _count(record)
        good = {i: n for i, n in runs.items() if i >= 0}
        outcome.done = len(good)
        outcome.lost = tasks - outcome.done
        outcome.duplicated = sum(n - 1 for n in good.values())
        outcome.duplicated_killed = sum(
            n - 1 for i, n in good.items() if n > 1 and pids[i] & pool.killed_pids
        )
        ran_bad = sum(n for i, n in runs.items() if i < 0)
        if ran_bad:
            say(f"  {ran_bad} malformed bodies ran")
        outcome.dead = _dead_letters(app, say)
    finally:
        stop.set()
        pool.stop()
        app.close()


def _dead_letters(app: Celeriac, say: Callable[[str], None]) -> int:
    """How many distinct dead letters; tasks among them (never malformed) are named,
    and make the count differ from the malformed entries sent."""
    for _ in range(50):
        try:
            dead = app.broker.dead_letters(QUEUE, 100_000)
            break
        except Exception:  # the connection was killed under it: once more
            time.sleep(0.2)
    else:
        return -1
    for letter in dead:
        if letter.id.startswith("chaos-"):  # a task is never malformed: a failure
            say(f"  task {letter.id} dead-lettered: {letter.reason}")
    # distinct: a dead-lettering whose ack was lost with the connection happens again
    return len({(letter.id, letter.body) for letter in dead})


def _injectors(
    outcome: Outcome,
    server: BrokerServer,
    pool: Workers,
    stop: threading.Event,
    tasks: int,
    record: Path,
) -> list[threading.Thread]:
    def every(seconds: float, action: Callable[[], object], name: str) -> threading.Thread:
        def loop() -> None:
            while not stop.wait(seconds):
                if action():
                    outcome.injected[name] += 1

        return threading.Thread(target=loop, daemon=True)

    threads = []
    if "child" in outcome.faults:
        threads.append(every(1.0, pool.kill_child, "child"))
    if "supervisor" in outcome.faults:
        threads.append(every(2.5, lambda: pool.kill_worker() or True, "supervisor"))
    if "connkill" in outcome.faults:
        threads.append(every(server.connkill_interval(), server.kill_connections, "connkill"))
    if "restart" in outcome.faults and server.restartable:
        restarts = (server, outcome, stop, tasks, record)
        threads.append(threading.Thread(target=_restarts, args=restarts, daemon=True))
    return threads


def _restarts(
    server: BrokerServer, outcome: Outcome, stop: threading.Event, tasks: int, record: Path
) -> None:
    """Restart the broker when a quarter of the tasks ran, and again at 60%."""
    for fraction in (0.25, 0.6):
        while not stop.is_set() and len(_count(record)[0]) < tasks * fraction:
            stop.wait(0.2)
        if stop.is_set():
            return
        server.restart()
        outcome.injected["restart"] += 1


# -- the command ---------------------------------------------------------------------------
def applicable(broker: str, fault: str) -> bool:
    """Whether a fault can be injected on a broker (see the module docstring)."""
    if fault == "restart":
        return broker == "redis" or (broker == "rabbitmq" and bool(shutil.which("rabbitmq-server")))
    if fault == "connkill":
        return broker in ("redis", "rabbitmq")
    return True


HEADER = (
    f"{'broker':9} {'fault':22} {'sent':>7} {'done':>7} {'lost':>5} {'dup':>5} "
    f"{'dup(killed)':>11} {'bad':>5} {'dead':>5} {'time':>8}  injected"
)


def line(o: Outcome) -> str:
    injected = ", ".join(f"{k} x{v}" for k, v in sorted(o.injected.items())) or "-"
    return (
        f"{o.broker:9} {'+'.join(o.faults):22} {o.sent:>7} {o.done:>7} {o.lost:>5} "
        f"{o.duplicated:>5} {o.duplicated_killed:>11} {o.malformed:>5} {o.dead:>5} "
        f"{o.seconds:>7.1f}s  {injected}{'' if o.ok else '  <-- FAILED'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", action="append", choices=BROKERS)
    parser.add_argument("--fault", action="append", choices=FAULTS)
    parser.add_argument("--together", action="store_true", help="all faults in one run")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--work-ms", type=int, default=2, help="each task sleeps this long")
    parser.add_argument("--malformed", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=600.0, help="per run, seconds")
    args = parser.parse_args(argv)
    brokers = args.broker or list(BROKERS)
    faults = args.fault or list(FAULTS)
    print(HEADER, flush=True)
    failed = 0
    for broker in brokers:
        plans = [tuple(faults)] if args.together else [(f,) for f in faults]
        for plan in plans:
            wanted, plan = plan, tuple(f for f in plan if applicable(broker, f))
            if not plan:
                print(f"{broker:9} {'+'.join(wanted):22} not applicable", flush=True)
                continue
            try:
                outcome = run(
                    broker, plan, args.tasks, args.workers, args.concurrency, args.work_ms,
                    args.malformed, args.timeout, say=print,
                )  # fmt: skip
            except RuntimeError as exc:
                print(f"{broker:9} {'+'.join(plan):22} not run: {exc}", flush=True)
                continue
            failed += not outcome.ok
            print(line(outcome), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
