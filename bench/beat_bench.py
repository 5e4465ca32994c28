"""One beat leader with 10,000 entries due every second: send lag and the leader's CPU.

    python bench/beat_bench.py [--broker redis://localhost:6379/15] [--entries 10000]
                               [--seconds 20] [--warm-up 5] [--no-events]
    python bench/beat_bench.py --rounds 5 [--entries 10000]     # the leader's work alone

Starts ``celeriac -A <app> beat`` as its own process (the leader: it is the only
beat) on an app with ``--entries`` entries ``schedule(1.0)``; this process drains
the queue as fast as it can. For every run taken in the measured window it
prints:

* build lag: when the leader built the run's message (``sent_at``) minus its due
  time (negative: built ahead of it, while the leader waited);
* arrival lag: when this process took the message from the broker minus the due
  time: build lag plus recording it in the broker plus this reader's own delay
  (an upper bound of what a worker would see);

as median and p99, the runs per second, and the leader's CPU (user + system,
from /proc, as a share of one core) over the window. The broker's database or
file is emptied first (Redis: FLUSHDB of the given database).

With ``--rounds N`` it times instead the leader's own work in this process, on the
memory broker: N rounds of ``--entries`` runs due at once (building each message,
recording, events), CPU seconds per round and per run.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import import_path, p50_p99

from celeriac import Celeriac
from celeriac.message import decode
from celeriac.schedules import schedule
from celeriac.urls import redact

APP = """
from celeriac import Celeriac
from celeriac.schedules import schedule

app = Celeriac("benchbeat", broker={url!r})
app.conf.beat_schedule = {{
    f"entry-{{i}}": {{"task": "benchbeat.noop", "schedule": schedule(1.0)}} for i in range({n})
}}
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _empty(url: str) -> None:
    if url.startswith("redis"):
        import redis  # the bench may use redis-py directly

        redis.Redis.from_url(url).flushdb()


def rounds(entries: int, count: int) -> None:
    """The leader's CPU per round of ``entries`` due runs, on the memory broker."""
    from celeriac.beat import Beat

    app = Celeriac("benchbeat", broker="memory://beat-bench", set_as_current=False)
    app.conf.beat_schedule = {
        f"entry-{i}": {"task": "benchbeat.noop", "schedule": schedule(1.0)} for i in range(entries)
    }
    beat = Beat(app, events=True)
    beat._broker = broker = app.connect_broker()
    assert broker.beat is not None
    beat.step(broker.beat)  # leads, reads the entries
    cpu = []
    for _ in range(count):
        time.sleep(max(0.0, beat._heap[0][0] / 1000 - time.time()))
        started, before = time.process_time(), beat.sent
        beat._send_due(broker.beat)
        cpu.append((time.process_time() - started, beat.sent - before))
        broker.purge("celeriac")
    for seconds, sent in cpu:
        print(f"round: {sent} runs in {seconds:.3f} CPU s ({seconds / sent * 1e6:.0f} us a run)")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", default="redis://localhost:6379/15")
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warm-up", type=float, default=5.0)
    parser.add_argument("--no-events", action="store_true", help="the leader sends no events")
    parser.add_argument("--rounds", type=int, default=0, help="time the leader's work alone")
    args = parser.parse_args()
    if args.rounds:
        return rounds(args.entries, args.rounds)
    _empty(args.broker)
    workdir = Path(tempfile.mkdtemp(prefix="beat-bench-"))
    (workdir / "benchbeat.py").write_text(APP.format(url=args.broker, n=args.entries))
    env = {**os.environ, "PYTHONPATH": import_path(workdir)}
    command = [sys.executable, "-m", "celeriac", "-A", "benchbeat", "beat", "-l", "WARNING"]
    if args.no_events:
        command.append("--no-events")
    leader = subprocess.Popen(command, cwd=workdir, env=env)
    app = Celeriac("reader", broker=args.broker, set_as_current=False)
    broker = app.broker
    start = time.time() + args.warm_up
    end = start + args.seconds
    build: list[float] = []
    arrival: list[float] = []
    cpu_start = cpu_end = 0.0
    try:
        while time.time() < end + 5.0:  # runs due at the end may leave late
            now = time.time()
            if not cpu_start and now >= start:
                cpu_start = _cpu_seconds(leader.pid)
            if not cpu_end and now >= end:
                cpu_end = _cpu_seconds(leader.pid)
            batch = broker.fetch(["celeriac"], "reader", 1000, 0.2)
            taken = time.time()
            for delivery in batch:
                message = decode(delivery.body, app.codec, delivery)
                due = message.headers["beat"]["due"] / 1000
                if start <= due < end:
                    build.append((message.sent_at - due) * 1000)
                    arrival.append((taken - due) * 1000)
            if batch:
                broker.ack("reader", [d.tag for d in batch])
    finally:
        leader.send_signal(signal.SIGTERM)
        leader.wait(30)
        app.close()
    expected = args.entries * int(args.seconds)
    b50, b99 = p50_p99(sorted(build))
    a50, a99 = p50_p99(sorted(arrival))
    print(f"broker {redact(args.broker)}, {args.entries} entries every second, {args.seconds:g} s")
    print(f"runs taken due in the window: {len(build)} of {expected} expected")
    print(f"build lag   p50 {b50:8.1f} ms   p99 {b99:8.1f} ms")
    print(f"arrival lag p50 {a50:8.1f} ms   p99 {a99:8.1f} ms")
    print(f"leader CPU: {(cpu_end - cpu_start) / args.seconds * 100:.0f}% of one core")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} (lags grow when it is busy)")


if __name__ == "__main__":
    main()
