"""celeriac and Celery on the same RabbitMQ, in one run, with the ratio of each figure.

    python bench/rabbitmq_bench.py [--url amqp://guest:guest@localhost:5672/VHOST]
                                   [--backend redis://localhost:6379/13]
                                   [--tasks 10000] [--roundtrips 500] [--no-workers]

Without ``--url`` it makes a throwaway virtual host with ``rabbitmqctl`` and
deletes it at the end; a ``--url`` vhost is used as it is (give one nobody
else uses: its queues are purged). Results go to ``--backend`` (Redis, the
recommended pairing) for both; they expire by themselves. Needs the bench and
rabbitmq extras (``pip install -e '.[bench,rabbitmq,redis]'``: Celery is only a
benchmark dependency). Measures:

a. the raw limit: a plain pika loop publishing persistent messages the size of
   a celeriac task message, confirmed once per 1,000 (our batch mode);
b. celeriac enqueue rate, one ``delay()`` at a time: each returns once
   RabbitMQ confirmed the message (publisher confirms, persistent);
c. Celery's enqueue rate the same way: by default (no publisher confirms, so
   ``delay()`` returns before RabbitMQ has the message) and with
   ``confirm_publish`` (comparable guarantee), next to celeriac with
   ``broker_publish_confirm=False`` (the same choice as Celery's default);
d. celeriac batch publish rate (``app.publish`` of 1,000 messages at a time);
e. with one worker each (``-P prefork -c 2``, default prefetch, started here):
   drain rate of a queue of ``--tasks`` tasks (from the tasks' own completion
   times, so worker start-up does not count) and the ``delay().get()`` round
   trip, p50 and p99.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pika

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    Table,
    celery_drain,
    compare_workers,
    import_path,
    rate,
    timed,
)

TASKS = """
import os, time
from celeriac import Celeriac

app = Celeriac("bench", broker=os.environ["BENCH_BROKER"], backend=os.environ["BENCH_BACKEND"],
               task_default_queue="celeriac-bench", worker_send_task_events=False)

@app.task
def stamp():
    return time.time()

fire = Celeriac("bench", broker=os.environ["BENCH_BROKER"], backend=os.environ["BENCH_BACKEND"],
                task_default_queue="celeriac-bench", worker_send_task_events=False,
                broker_publish_confirm=False)

@fire.task(name=stamp.name)
def fire_stamp():
    return time.time()
"""

CELERY_TASKS = """
import os, time
from celery import Celery

app = Celery("cbench", broker=os.environ["BENCH_BROKER"], backend=os.environ["BENCH_BACKEND"])
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                task_default_queue="celery-bench", worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True)
if os.environ.get("BENCH_CONFIRM"):
    app.conf.broker_transport_options = {"confirm_publish": True}

@app.task
def stamp():
    return time.time()
"""


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


class Bench:
    def __init__(self, url: str, backend: str, tasks: int, roundtrips: int) -> None:
        self.url, self.backend, self.tasks, self.roundtrips = url, backend, tasks, roundtrips
        self.table = Table()
        self.workdir = Path(tempfile.mkdtemp(prefix="celeriac-rabbitmq-bench-"))
        (self.workdir / "benchtasks.py").write_text(TASKS)
        (self.workdir / "celerytasks.py").write_text(CELERY_TASKS)
        os.environ.update(BENCH_BROKER=url, BENCH_BACKEND=backend)
        sys.path.insert(0, str(self.workdir))
        import benchtasks  # type: ignore[import-not-found]
        import celerytasks  # type: ignore[import-not-found]

        self.app, self.stamp = benchtasks.app, benchtasks.stamp
        self.fire, self.fire_stamp = benchtasks.fire, benchtasks.fire_stamp
        self.capp, self.cstamp = celerytasks.app, celerytasks.stamp
        self.raw = pika.BlockingConnection(pika.URLParameters(url))

    def purge(self) -> None:
        ch = self.raw.channel()
        for queue in ("celeriac-bench", "celery-bench", "raw-bench"):
            try:
                ch.queue_purge(queue)
            except pika.exceptions.ChannelClosedByBroker:  # not declared yet
                ch = self.raw.channel()

    def raw_limit(self) -> None:
        from celeriac.rabbitmq.connection import Outgoing, connection_parameters
        from celeriac.rabbitmq.pipeline import Pipeline

        payload = self.stamp.build_message((), {}).envelope(self.app.codec).body
        ch = self.raw.channel()
        ch.queue_declare("raw-bench", durable=True, arguments={"x-max-priority": 10})
        # celeriac's confirming pipeline (pika's SelectConnection on an I/O thread), fed
        # 1,000 messages at a time: the client-side limit of a confirmed batch.
        pipeline = Pipeline(connection_parameters(self.url, 30, 10.0), self.url, 10.0)
        props = pika.BasicProperties(delivery_mode=2, priority=5)
        batch = [Outgoing("", "raw-bench", payload, props)] * 1000
        n = self.tasks

        def publish() -> None:
            for start in range(0, n, 1000):
                if not pipeline.submit(batch[: min(n, start + 1000) - start]).wait(60):
                    raise RuntimeError("no publisher confirms within 60s")

        self.raw_rate = rate(n, timed(publish))
        pipeline.close()
        self.table.row(
            f"a. raw pika publish, persistent, confirmed per 1,000 ({len(payload)} B)",
            self.raw_rate,
            None,
            "/s",
        )
        ch.queue_delete("raw-bench")

    # -- b, c: one delay() at a time -------------------------------------------------------
    def enqueue(self) -> None:
        self.stamp.delay()  # connect and declare
        self.fire_stamp.delay()
        self.cstamp.delay()
        self.purge()
        n = self.tasks
        ours = rate(n, timed(lambda: [self.stamp.delay() for _ in range(n)]))
        self.purge()
        fire = rate(n, timed(lambda: [self.fire_stamp.delay() for _ in range(n)]))
        self.purge()
        theirs = rate(n, timed(lambda: [self.cstamp.delay() for _ in range(n)]))
        self.purge()
        confirmed = self._celery_confirmed_enqueue(n)
        self.purge()
        self.table.row("b/c. enqueue, one delay(), confirmed", ours, confirmed, "/s")
        self.table.row("c.   not confirmed (broker_publish_confirm=False)", fire, theirs, "/s")
        self.table.row(
            "     celeriac delay() vs raw batch publish", 100 * ours / self.raw_rate, None, "%"
        )

    def _celery_confirmed_enqueue(self, n: int) -> float:
        script = (
            "import time, sys; import celerytasks as t; t.stamp.delay(); "
            f"s = time.perf_counter(); [t.stamp.delay() for _ in range({n})]; "
            "print(time.perf_counter() - s)"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            cwd=self.workdir,
            env={**os.environ, "PYTHONPATH": import_path(self.workdir), "BENCH_CONFIRM": "1"},
        )
        return rate(n, float(done.stdout.split()[-1]))

    # -- d: batch publish ----------------------------------------------------------------------
    def batch(self) -> None:
        self.purge()
        n = max(self.tasks, 10_000)
        messages = [self.stamp.build_message((), {}) for _ in range(n)]
        publish = self.app.publish
        seconds = timed(lambda: [publish(messages[i : i + 1000]) for i in range(0, n, 1000)])
        self.table.row("d. batch publish, 1,000 per app.publish", rate(n, seconds), None, "/s")
        self.purge()

    # -- e: workers ------------------------------------------------------------------------------
    def workers(self) -> None:
        compare_workers(
            self.table,
            "e",
            self.workdir,
            self.purge,
            self.roundtrips,
            (self._celeriac_drain, self.stamp),
            (lambda: celery_drain(self.cstamp, self.tasks), self.cstamp),
        )

    def _celeriac_drain(self) -> float:
        messages = [self.stamp.build_message((), {}) for _ in range(self.tasks)]
        for i in range(0, len(messages), 1000):
            self.app.publish(messages[i : i + 1000])
        done = [self.app.AsyncResult(m.id).get(timeout=600) for m in messages]
        return rate(len(done) - 1, max(done) - min(done))

    def report(self) -> None:
        self.table.print(
            f"celeriac vs Celery on {self.url.rpartition('@')[2]} (results in {self.backend})"
        )

    def close(self) -> None:
        self.purge()
        self.raw.close()
        self.app.close()
        self.fire.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a RabbitMQ vhost of the bench's own (default: make one)")
    parser.add_argument("--backend", default="redis://localhost:6379/13")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--roundtrips", type=int, default=500)
    parser.add_argument("--no-workers", action="store_true", help="skip part e")
    opts = parser.parse_args()
    vhost = None
    url = opts.url
    if url is None:
        if shutil.which("rabbitmqctl") is None:
            parser.error("give --url: rabbitmqctl is not here to make a throwaway vhost")
        vhost = f"celeriac-bench-{uuid.uuid4().hex[:8]}"
        rabbitmqctl("add_vhost", vhost)
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        url = f"amqp://guest:guest@localhost:5672/{vhost}"
    try:
        bench = Bench(url, opts.backend, opts.tasks, opts.roundtrips)
        bench.raw_limit()
        bench.enqueue()
        bench.batch()
        if not opts.no_workers:
            bench.workers()
        bench.close()
        bench.report()
    finally:
        if vhost is not None:
            rabbitmqctl("delete_vhost", vhost)


if __name__ == "__main__":
    main()
