"""Confirmed publishing on RabbitMQ: celeriac's delay() against Celery's, and AMQP clients.

    python bench/amqp_publish.py [--url amqp://guest:guest@localhost:5672/VHOST]
                                 [--count 2000] [--threads 8] [--no-clients]

Without ``--url`` it makes a throwaway virtual host with ``rabbitmqctl`` and
deletes it at the end. Needs the bench and rabbitmq extras (Celery, which
brings py-amqp); the client comparison also uses aiormq and amqpstorm when
they are installed (``pip install aiormq amqpstorm``), and skips them if not.
Prints, each for one thread calling in a loop and for ``--threads`` threads
at once (their aggregate):

a. celeriac ``delay()``, every message persistent and confirmed by RabbitMQ
   before ``delay()`` returns, and Celery's ``delay()`` with its default (no
   publisher confirms: it returns once the message is written), with the ratio;
b. the AMQP clients on the same confirmed, persistent, task-sized publish,
   each as it is used from threads: pika's ``BlockingConnection`` behind a lock
   (celeriac before its pipeline), celeriac's pipeline (pika's
   ``SelectConnection`` on an I/O thread), py-amqp with ``confirm_publish`` (a
   connection per thread, as kombu's pool gives), aiormq on an asyncio loop
   thread (one channel, pipelined), amqpstorm (a channel per thread).

RabbitMQ confirms a persistent message once it is written to disk, so one
thread's rate is bounded by the server's disk flush, whichever client: the
figures that differ are how many threads' messages one flush carries.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika

sys.path.insert(0, str(Path(__file__).parent))
from _common import Table, rate

QUEUE = "publish-bench"
BODY = b"x" * 420  # about a celeriac task message with a few arguments


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def in_threads(threads: int, count: int, make: Callable[[], Callable[[], Any]]) -> float:
    """Aggregate calls per second of ``threads`` threads, each calling its own ``make()``
    ``count // threads`` times, started together."""
    each = count // threads
    calls = [make() for _ in range(threads)]
    start = threading.Barrier(threads + 1)

    def run(call: Callable[[], Any]) -> None:
        start.wait()
        for _ in range(each):
            call()

    workers = [threading.Thread(target=run, args=(call,)) for call in calls]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return rate(each * threads, time.perf_counter() - began)


def sequential(count: int, call: Callable[[], Any]) -> float:
    call()  # connected and declared
    began = time.perf_counter()
    for _ in range(count):
        call()
    return rate(count, time.perf_counter() - began)


class Bench:
    def __init__(self, url: str, count: int, threads: int) -> None:
        self.url, self.count, self.threads = url, count, threads
        self.table = Table()
        conn = pika.BlockingConnection(pika.URLParameters(url))
        conn.channel().queue_declare(QUEUE, durable=True, arguments={"x-max-priority": 10})
        conn.close()

    def purge(self) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        ch = conn.channel()
        for queue in (QUEUE, "celeriac-publish-bench", "celery-publish-bench"):
            try:
                ch.queue_purge(queue)
            except pika.exceptions.ChannelClosedByBroker:
                ch = conn.channel()
        conn.close()

    def both(self, label: str, ours: Callable[[], Any], theirs: Callable[[], Any]) -> None:
        self.purge()
        one_ours = sequential(self.count, ours)
        self.purge()
        one_theirs = sequential(self.count, theirs)
        self.purge()
        many_ours = in_threads(self.threads, self.count * 2, lambda: ours)
        self.purge()
        many_theirs = in_threads(self.threads, self.count * 2, lambda: theirs)
        self.purge()
        self.table.row(f"a. {label}, 1 thread", one_ours, one_theirs, "/s")
        self.table.row(f"a. {label}, {self.threads} threads", many_ours, many_theirs, "/s")

    def apps(self) -> None:
        from celery import Celery

        from celeriac import Celeriac

        app = Celeriac("bench", broker=self.url, task_default_queue="celeriac-publish-bench")
        capp = Celery("cbench", broker=self.url)
        capp.conf.update(task_default_queue="celery-publish-bench", task_ignore_result=True)

        @app.task
        def noop(n: int) -> None: ...

        @capp.task(name="noop")
        def cnoop(n: int) -> None: ...

        try:
            self.both(
                "delay(): celeriac confirmed vs Celery unconfirmed",
                lambda: noop.delay(1),
                lambda: cnoop.delay(1),
            )
        finally:
            app.close()

    # -- b: the clients ----------------------------------------------------------------
    def client(self, name: str, one: Callable[[], Any], per_thread: Callable[[], Any]) -> None:
        self.purge()
        alone = sequential(self.count, one)
        self.purge()
        together = in_threads(self.threads, self.count * 2, per_thread)
        self.purge()
        self.table.row(f"b. {name}: 1 thread / {self.threads} threads", alone, together, "/s")

    def clients(self) -> None:
        props = pika.BasicProperties(delivery_mode=2, priority=5, message_id="m")
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        ch = conn.channel()
        ch.confirm_delivery()
        lock = threading.Lock()

        def blocking() -> None:
            with lock:
                ch.basic_publish("", QUEUE, BODY, props, mandatory=True)

        self.client("pika BlockingConnection, locked", blocking, lambda: blocking)
        conn.close()

        from celeriac.rabbitmq.connection import Outgoing, connection_parameters
        from celeriac.rabbitmq.pipeline import Pipeline

        pipeline = Pipeline(connection_parameters(self.url, 30, 10.0), self.url, 10.0)
        message = Outgoing("", QUEUE, BODY, props, True)

        def piped() -> None:
            if not pipeline.submit([message]).wait(30):
                raise RuntimeError("no confirm")

        self.client("pika SelectConnection I/O thread (celeriac)", piped, lambda: piped)
        pipeline.close()
        self.py_amqp()
        if importlib.util.find_spec("aiormq"):
            self.aiormq()
        if importlib.util.find_spec("amqpstorm"):
            self.amqpstorm()

    def py_amqp(self) -> None:
        import amqp

        parsed = pika.URLParameters(self.url)
        made: list[Any] = []

        def connect() -> Callable[[], None]:
            conn = amqp.Connection(
                f"{parsed.host}:{parsed.port}",
                userid="guest",
                password="guest",
                virtual_host=parsed.virtual_host,
                confirm_publish=True,
            )
            conn.connect()
            made.append(conn)
            ch = conn.channel()

            def publish() -> None:
                msg = amqp.Message(BODY, delivery_mode=2, priority=5, message_id="m")
                ch.basic_publish(msg, exchange="", routing_key=QUEUE, mandatory=True)

            return publish

        self.client("py-amqp confirm_publish, connection per thread", connect(), connect)
        for conn in made:
            conn.close()

    def aiormq(self) -> None:
        import aiormq
        from pamqp.commands import Basic

        loop = asyncio.new_event_loop()
        runner = threading.Thread(target=loop.run_forever, daemon=True)
        runner.start()

        async def open_channel() -> Any:
            conn = await aiormq.connect(self.url)
            channel = await conn.channel(publisher_confirms=True)
            return conn, channel

        conn, channel = asyncio.run_coroutine_threadsafe(open_channel(), loop).result()
        props = aiormq.spec.Basic.Properties(delivery_mode=2, priority=5, message_id="m")

        def publish() -> None:
            sent = channel.basic_publish(BODY, routing_key=QUEUE, properties=props, mandatory=True)
            confirmation = asyncio.run_coroutine_threadsafe(sent, loop).result()
            assert isinstance(confirmation, Basic.Ack)

        self.client("aiormq on a loop thread, one channel", publish, lambda: publish)
        asyncio.run_coroutine_threadsafe(conn.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)

    def amqpstorm(self) -> None:
        import amqpstorm

        parsed = pika.URLParameters(self.url)
        conn = amqpstorm.Connection(
            parsed.host, "guest", "guest", port=parsed.port, virtual_host=parsed.virtual_host
        )

        def channel() -> Callable[[], None]:
            ch = conn.channel()
            ch.confirm_deliveries()
            props = {"delivery_mode": 2, "priority": 5, "message_id": "m"}

            def publish() -> None:
                if not ch.basic.publish(BODY, QUEUE, "", props, mandatory=True):
                    raise RuntimeError("nacked")

            return publish

        self.client("amqpstorm, channel per thread", channel(), channel)
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a vhost of the run's own (its queues are purged)")
    parser.add_argument("--count", type=int, default=2000, help="publishes per figure")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--no-clients", action="store_true", help="only celeriac and Celery")
    args = parser.parse_args()
    vhost = None
    url = args.url
    if url is None:
        vhost = f"celeriac-publish-bench-{uuid.uuid4().hex[:6]}"
        rabbitmqctl("add_vhost", vhost)
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    try:
        bench = Bench(url, args.count, args.threads)
        bench.apps()
        if not args.no_clients:
            bench.clients()
        bench.table.print(
            "Confirmed, persistent publishes per second (a: celeriac | Celery, ratio; "
            "b: 1 thread | N threads)"
        )
    finally:
        if vhost is not None:
            rabbitmqctl("delete_vhost", vhost)


if __name__ == "__main__":
    main()
