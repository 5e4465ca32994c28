"""Redis commands and server CPU per drained task, through a real prefork worker.

    python bench/redis_commands.py [--tasks 20000] [--pool prefork] [-c 2]
                                   [--no-events] [--results] [--reps 1]

A private ``redis-server`` is started on a free port (nobody else's commands
are counted). ``--tasks`` no-op tasks are published (``app.publish``, 1,000
at a time), the server's statistics are reset (``CONFIG RESETSTAT``), then a
worker is started through the CLI (``-P prefork -c 2`` and the defaults:
task events on, late acks) and drains the queue. Each task INCRs a counter
(as the shared peers benchmark does); the run ends when it reaches
``--tasks``. Printed per drained task:

- Redis commands, from ``INFO commandstats``: every command the server ran,
  those inside Lua scripts and MULTI/EXEC included; the counter's own INCR
  and this script's polling GETs are taken out (shown apart);
- the commands by name, the most frequent first;
- Redis server CPU (``used_cpu_user + used_cpu_sys`` of ``INFO cpu``), in us;
- the drain rate, worker start-up included (noisy on a loaded machine; the
  command counts are not).

Counts do not depend on the machine's load, except for the handful of
commands of a fetch that finds nothing (a worker waiting at the end).

``--floor`` also drains the same number of tasks, on the same server, with
the least any queue could do: ``-c`` plain processes that pop messages from a
list in batches of ``--floor-batch`` (``LMPOP``), decode them and run the
task's INCR; no leases, no acks, no events, nothing that survives a crash. It
prints the ratio of celeriac's drain to that floor: what is left to gain by
the worker's bookkeeping, as against the task's own round trip to Redis.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).parent))
from _common import worker_command, worker_process

TASKS = """
import os
import redis
from celeriac import Celeriac

app = Celeriac("cmdbench", broker=os.environ["BENCH_BROKER"], backend=os.environ["BENCH_BACKEND"],
               worker_send_task_events=os.environ["BENCH_EVENTS"] == "1",
               task_send_sent_event=os.environ["BENCH_EVENTS"] == "1")
_r = None

@app.task(name="bench.noop", ignore_result=os.environ["BENCH_RESULTS"] != "1")
def noop():
    global _r
    if _r is None:
        _r = redis.Redis.from_url(os.environ["BENCH_COUNTER"])
    _r.incr("bench:counter")
"""

ADMIN = {"info", "config", "flushall", "flushdb", "ping", "client", "hello", "select"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_redis(workdir: Path) -> Iterator[int]:
    """A redis-server of our own on a free port, stopped afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not on PATH: install Redis to run this benchmark")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    sys.exit(f"redis-server did not start on port {port}")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def command_calls(client: redis.Redis) -> dict[str, int]:
    calls = {}
    for key, value in client.info("commandstats").items():
        name = key.removeprefix("cmdstat_")
        if name.split("|")[0] not in ADMIN:
            calls[name] = int(value["calls"])
    return calls


def server_cpu(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def memory_per_task(port: int, count: int = 10_000) -> tuple[float, float]:
    """MEMORY USAGE of every key after ``count`` ``delay()`` calls, per task: of all
    keys, and of all but the event stream (the task-sent events, on by default; as
    ``redis_bench.py`` part e measures it, which sends none)."""
    import cmdbenchtasks

    client = redis.Redis(port=port)
    client.flushall()
    cmdbenchtasks.app.broker._registered.clear()
    for _ in range(count):
        cmdbenchtasks.noop.delay()
    used = {key: int(client.memory_usage(key, samples=0) or 0) for key in client.scan_iter()}
    streams = sum(size for key, size in used.items() if b":stream:" in key)
    client.flushall()
    cmdbenchtasks.app.broker._registered.clear()
    return sum(used.values()) / count, (sum(used.values()) - streams) / count


def run_once(args: argparse.Namespace, port: int, workdir: Path) -> dict[str, float]:
    client = redis.Redis(port=port)
    client.flushall()
    import cmdbenchtasks

    app, noop = cmdbenchtasks.app, cmdbenchtasks.noop
    messages = [noop.build_message((), {}) for _ in range(args.tasks)]
    for i in range(0, len(messages), 1000):
        app.publish(messages[i : i + 1000])
    client.config_resetstat()
    cpu0 = server_cpu(client)
    polls = 0
    command = worker_command("celeriac", "cmdbenchtasks", args.concurrency)
    command[command.index("prefork")] = args.pool
    started = time.perf_counter()
    with worker_process("celeriac", command, workdir):
        deadline = time.monotonic() + 600
        while True:
            polls += 1
            if int(client.get("bench:counter") or 0) >= args.tasks:
                break
            if time.monotonic() > deadline:
                sys.exit("the worker did not drain the queue within 600 s")
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        calls = command_calls(client)
        cpu1 = server_cpu(client)
    calls["get"] = calls.get("get", 0) - polls
    calls["incrby"] = calls.get("incrby", 0) - args.tasks  # redis-py sends INCRBY
    n = args.tasks
    total = sum(calls.values())
    events = "on" if args.events else "off"
    results = "stored" if args.results else "ignored"
    print(f"{n} tasks, -P {args.pool} -c {args.concurrency}, events {events}, results {results}")
    print(f"  Redis commands per drained task: {total / n:.2f}", end="")
    print(f"  (plus the task's own INCR: {(total + n) / n:.2f})")
    for name, count in sorted(calls.items(), key=lambda item: -item[1]):
        if count:
            print(f"    {name:<24} {count / n:8.3f}")
    print(f"  Redis server CPU per task: {(cpu1 - cpu0) * 1e6 / n:.1f} us")
    print(f"  drain, start-up included: {n / seconds:,.0f} tasks/s")
    return {"commands": total / n, "cpu_us": (cpu1 - cpu0) * 1e6 / n, "rate": n / seconds}


def _floor_consumer(url: str, batch: int) -> None:
    import json

    client, counter = redis.Redis.from_url(url), redis.Redis.from_url(url)
    while True:
        got = client.execute_command("LMPOP", 1, "floor", "LEFT", "COUNT", batch)
        if not got:
            return
        for body in got[1]:
            json.loads(body)
            counter.incr("floor:counter")


def run_floor(args: argparse.Namespace, port: int) -> float:
    """The floor's drain rate (see the module docstring), processes started included."""
    import json
    import multiprocessing

    url = f"redis://127.0.0.1:{port}/1"
    client = redis.Redis.from_url(url)
    client.flushdb()
    body = json.dumps({"id": "0" * 36, "task": "bench.noop", "args": [], "kwargs": {}})
    for i in range(0, args.tasks, 1000):
        client.rpush("floor", *[body] * min(1000, args.tasks - i))
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    consumers = [
        context.Process(target=_floor_consumer, args=(url, args.floor_batch))
        for _ in range(args.concurrency)
    ]
    for consumer in consumers:
        consumer.start()
    for consumer in consumers:
        consumer.join()
    seconds = time.perf_counter() - started
    assert int(client.get("floor:counter") or 0) == args.tasks
    client.flushdb()
    floor = args.tasks / seconds
    print(
        f"  floor ({args.concurrency} processes, LMPOP {args.floor_batch}, decode, INCR; "
        f"nothing else): {floor:,.0f} tasks/s"
    )
    return floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--pool", default="prefork", choices=("prefork", "threads", "solo"))
    parser.add_argument("-c", "--concurrency", type=int, default=2)
    parser.add_argument("--no-events", dest="events", action="store_false")
    parser.add_argument("--results", action="store_true", help="store results (same server)")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--floor", action="store_true", help="also drain with the floor")
    parser.add_argument("--floor-batch", type=int, default=4)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="celeriac-redis-commands-"))
    (workdir / "cmdbenchtasks.py").write_text(TASKS)
    sys.path.insert(0, str(workdir))
    with private_redis(workdir) as port:
        os.environ.update(
            BENCH_BROKER=f"redis://127.0.0.1:{port}/0",
            BENCH_BACKEND=f"redis://127.0.0.1:{port}/0",
            BENCH_COUNTER=f"redis://127.0.0.1:{port}/0",
            BENCH_EVENTS="1" if args.events else "0",
            BENCH_RESULTS="1" if args.results else "0",
        )
        every_key, queue_only = memory_per_task(port)
        print(
            f"Redis memory per queued task (10,000 delay(), MEMORY USAGE): {every_key:.1f} B, "
            f"of which the queue's keys {queue_only:.1f} B and the task-sent events the rest"
        )
        for _ in range(args.reps):
            measured = run_once(args, port, workdir)
            if args.floor:
                floor = run_floor(args, port)
                print(f"  celeriac's drain / the floor's: {measured['rate'] / floor:.2f}")


if __name__ == "__main__":
    main()
