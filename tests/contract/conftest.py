"""The broker contract suite's registry: every broker listed here runs every contract test.

To add a broker, write a function ``(request, tmp_path) -> BrokerEnv`` that
finds or starts its server (calling ``tests.needs.missing`` when there is none) and
add one line to ``BROKERS``. Each ``BrokerEnv`` must be isolated from every
other test's: a fresh store, or a unique ``prefix`` that every queue name of the
test starts with (the tests name queues through ``env.q(...)``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from celeriac.brokers.base import Broker
from tests.rabbitmq.contract_env import rabbitmq_env
from tests.redis.contract_env import redis_env

from .env import BrokerEnv


def memory_env(request: pytest.FixtureRequest, tmp_path: Path) -> BrokerEnv:
    return BrokerEnv(
        "celeriac.brokers.memory:MemoryBroker",
        f"memory://contract-{uuid.uuid4().hex}",
        spans_processes=False,
        features=BrokerEnv.features - {"wake"},
    )


def sqlite_env(request: pytest.FixtureRequest, tmp_path: Path) -> BrokerEnv:
    return BrokerEnv("celeriac.sqlite.broker:SQLiteBroker", f"sqlite:///{tmp_path}/broker.sqlite3")


@dataclass(frozen=True)
class BrokerKind:
    open: Callable[[pytest.FixtureRequest, Path], BrokerEnv]
    spans_processes: bool  # known before the server is found, to choose the process tests
    lacks: frozenset[str] = frozenset()  # contract features it does not have (see env.py)


BROKERS: dict[str, BrokerKind] = {
    "memory": BrokerKind(memory_env, spans_processes=False, lacks=frozenset({"wake"})),
    "sqlite": BrokerKind(sqlite_env, spans_processes=True),
    "rabbitmq": BrokerKind(
        rabbitmq_env,
        spans_processes=True,
        lacks=frozenset({"leases", "exact_stats", "global_priority", "browse", "forget_queue"}),
        # browse: waiting and delayed messages only (browse_waiting, browse_delayed); the
        # workers alone know their reserved ones (tests/rabbitmq/test_browse_reserved.py)
    ),
    "redis": BrokerKind(redis_env, spans_processes=True),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that ``needs`` a feature a broker lacks is not generated for it (not skipped):
    the suite reports only what each broker really promises."""
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("needs")
        callspec = getattr(item, "callspec", None)
        name = None
        if callspec is not None:
            name = callspec.params.get("env") or callspec.params.get("process_env")
        kind = BROKERS.get(name) if isinstance(name, str) else None
        if marker and kind and set(marker.args) & kind.lacks:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _open(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerEnv]:
    env = BROKERS[request.param].open(request, tmp_path)
    marker = request.node.get_closest_marker("needs")
    missing = set(marker.args) - env.features if marker else set()
    if missing:  # a registry entry out of step with what its broker says it has
        pytest.fail(
            f"the {request.param} broker lacks {', '.join(sorted(missing))}: "
            "list it in its BrokerKind.lacks"
        )
    try:
        yield env
    finally:
        env.close()


@pytest.fixture(params=list(BROKERS))
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerEnv]:
    """A fresh broker of each registered kind."""
    yield from _open(request, tmp_path)


@pytest.fixture(params=[name for name, kind in BROKERS.items() if kind.spans_processes])
def process_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerEnv]:
    """A fresh broker of each kind that several processes can share."""
    yield from _open(request, tmp_path)


@pytest.fixture
def broker(env: BrokerEnv) -> Broker:
    """One connection to ``env`` with the short test lease."""
    return env.connect()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(*features): the contract test needs these features")
