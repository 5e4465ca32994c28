"""Rate limits reserve slots in the broker and wait in its delayed set."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from celeriac import Celeriac
from celeriac.brokers.memory import MemoryBroker
from celeriac.exceptions import ConfigurationError
from celeriac.middleware.rate_limit import rate_key
from celeriac.rate import parse_rate
from celeriac.worker.job import Executor


@pytest.fixture
def app(request: pytest.FixtureRequest) -> Iterator[Celeriac]:
    url = f"memory://{request.node.name}"
    app = Celeriac("t", broker=url, backend=url)
    yield app
    app.close()


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("10/s", 10.0),
        ("60/m", 1.0),
        ("3600/h", 1.0),
        ("2.5/s", 2.5),
        (5, 5.0),
        ("7", 7.0),
        (None, None),
        ("0/s", None),
    ],
)
def test_parse_rate(text: object, per_second: float | None) -> None:
    assert parse_rate(text) == per_second  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["ten/s", "10/fortnight", -1, "/s"])
def test_bad_rates_are_explained(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="rate limit"):
        parse_rate(bad)  # type: ignore[arg-type]


def test_reservations_are_spaced_by_the_interval() -> None:
    broker = MemoryBroker("memory://gcra")
    waits = [broker.rates.reserve("k", 0.1) for _ in range(5)]
    assert waits[0] == 0.0
    for i, wait in enumerate(waits[1:], start=1):
        assert wait == pytest.approx(0.1 * i, abs=0.01)
    assert broker.rates.reserve("other", 0.1) == 0.0  # keys are independent


def test_burst_lets_n_run_at_once() -> None:
    broker = MemoryBroker("memory://burst")
    waits = [broker.rates.reserve("k", 0.1, burst=3) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.1, abs=0.01)


def test_limited_tasks_wait_in_the_delayed_set_and_free_the_worker(app: Celeriac) -> None:
    ran: list[str] = []

    # 2/s: the first run's slot lasts 0.5 s, longer than processing the four deliveries
    # takes on a loaded machine (with 10/s, 0.1 s, a third one once got its slot)
    @app.task(rate_limit="2/s")
    def limited(i: int) -> None:
        ran.append(f"limited{i}")

    @app.task
    def free() -> None:
        ran.append("free")

    for i in range(3):
        limited.delay(i)
    free.delay()
    executor = Executor(app, "w", "c", app.broker, app.backend)
    for delivery in app.broker.fetch(["celeriac"], "c", 10, 0):
        executor.process(delivery)
    assert ran == ["limited0", "free"]  # the other two wait in the broker, not here
    stats = app.broker.stats("celeriac")
    assert (stats.delayed, stats.in_flight, stats.total_waiting) == (2, 0, 0)
    deliveries = []
    while len(deliveries) < 2:
        deliveries += app.broker.fetch(["celeriac"], "c", 10, 1.0)
    for delivery in deliveries:
        executor.process(delivery)
    assert sorted(ran) == ["free", "limited0", "limited1", "limited2"]


def test_per_key_limits(app: Celeriac) -> None:
    @app.task(rate_limit="1/m", rate_limit_key="customer")
    def bill(customer: str, amount: int) -> None: ...

    assert rate_key(bill, ("acme", 1), {}) == f"{bill.name}:acme"
    assert rate_key(bill, (), {"customer": "zeta", "amount": 1}) == f"{bill.name}:zeta"

    @app.task(rate_limit="1/m", rate_limit_key=lambda args, kwargs: kwargs["region"])
    def ship(region: str) -> None: ...

    assert rate_key(ship, (), {"region": "eu"}) == f"{ship.name}:eu"


class _NoSharedState(MemoryBroker):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.rates = None


def test_a_broker_without_shared_state_limits_per_process_and_says_so(
    app: Celeriac, caplog: pytest.LogCaptureFixture
) -> None:
    """Given a broker with no rate-limit store (its ``rates`` is None), expect limited
    tasks to run (not fail), spaced by the limit within this process, with one warning."""
    app._connections().broker = _NoSharedState(app.broker_url)
    ran: list[int] = []

    @app.task(rate_limit="10/s")
    def limited(i: int) -> None:
        ran.append(i)

    for i in range(3):
        limited.delay(i)
    executor = Executor(app, "w", "c", app.broker, app.backend)
    deliveries = []
    while len(ran) < 3:
        for delivery in app.broker.fetch(["celeriac"], "c", 10, 1.0):
            deliveries.append(delivery)
            executor.process(delivery)
    executor.close()
    assert sorted(ran) == [0, 1, 2]
    assert len(deliveries) == 5  # two waited in the delayed set for their slot
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "per worker process" in caplog.records[0].message
