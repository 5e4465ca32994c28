"""A rate limit on RabbitMQ holds for the whole cluster: real workers, one shared token."""

from __future__ import annotations

import pika
import pytest

from celeriac.rabbitmq.topology import DELAY_LEVELS, delay_name
from tests.control.e2e import Cluster, cluster, wait_until

__all__ = ["cluster"]


def _delayed(url: str) -> int:
    """Messages waiting in the delay ladder of the cluster's virtual host."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        return sum(
            int(channel.queue_declare(delay_name(level), passive=True).method.message_count)
            for level in range(DELAY_LEVELS)
        )
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 404:
            raise
        return 0  # no ladder yet: nothing was delayed
    finally:
        conn.close()


@pytest.mark.parametrize("cluster", ["rabbitmq"], indirect=True)
def test_a_second_worker_waits_for_the_slot_the_first_one_took(cluster: Cluster) -> None:
    """Given a limit of 1/h on every task and a task run by one worker, expect another
    worker, which never ran a task, to put the next one off to the delay ladder: a limit
    held per worker process would let it run at once."""
    cluster.env["CELERIAC_TASK_DEFAULT_RATE_LIMIT"] = "1/h"
    cluster.start("w1@rates", "-P", "prefork", "-c", "1", "-Q", "celeriac")
    assert cluster.send("add", 1, 1).get(timeout=20) == 2
    cluster.start("w2@rates", "-P", "prefork", "-c", "1", "-Q", "other")

    later = cluster.send("add", 2, 2, queue="other")

    wait_until(lambda: _delayed(cluster.url) == 1, 30, "the task to wait for its slot")
    assert cluster.client.broker.stats("other").total_waiting == 0  # taken, then put off
    assert not later.ready()
    for worker in cluster.workers:
        assert "per worker process" not in worker.log
