"""Eight threads of one process calling delay() at once on Redis (shared round trips)."""

from __future__ import annotations

import threading

from celeriac import Celeriac
from celeriac.message import decode


def test_eight_threads_of_delay_send_every_task_exactly_once(redis_url: str) -> None:
    app = Celeriac("pub", broker=redis_url, task_send_sent_event=False, set_as_current=False)

    @app.task
    def noop(i: int) -> int:
        return i

    def send(start: int) -> None:
        for i in range(start, start + 250):
            noop.delay(i)

    threads = [threading.Thread(target=send, args=(n * 250,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    deliveries = app.broker.fetch(["celeriac"], "probe", 5000, 0.0)
    ids = [d.id for d in deliveries]
    assert len(ids) == len(set(ids)) == 2000
    assert sorted(decode(d.body, app.codec, d).args[0] for d in deliveries) == list(range(2000))
