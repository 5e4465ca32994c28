"""kombu's URL spellings reach a real RabbitMQ: a user without a password (guest's
default), ``pyamqp://``, the vhost as the path."""

from __future__ import annotations

import pytest

from celeriac import Celeriac
from tests.rabbitmq.conftest import HOST, PORT, amqp_url, queue, rabbitmq, vhost

__all__ = ["amqp_url", "queue", "rabbitmq", "vhost"]  # the fixtures


@pytest.mark.parametrize("scheme", ["amqp", "pyamqp"])
def test_a_user_without_password_connects_as_kombu_would(
    scheme: str, vhost: str, queue: str
) -> None:
    # Given Celery's spelling: a user and no password (kombu fills in guest's)
    url = f"{scheme}://guest@{HOST}:{PORT}/{vhost}"
    app = Celeriac("t", broker=url, backend="disabled://", set_as_current=False)
    try:
        # When a task is sent by name
        app.send_task("proj.tasks.add", [1, 2], queue=queue)
        # Expect it waiting in the queue of that vhost
        assert app.broker.stats(queue).total_waiting == 1
    finally:
        app.close()
