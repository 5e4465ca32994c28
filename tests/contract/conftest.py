"""The broker contract suite's registry: every broker listed here runs every contract test.

To add a broker, write a function ``(request, tmp_path) -> BrokerEnv`` that
finds or starts its server (calling ``missing_server`` when there is none) and
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
    )


def sqlite_env(request: pytest.FixtureRequest, tmp_path: Path) -> BrokerEnv:
    return BrokerEnv("celeriac.brokers.sqlite:SQLiteBroker", f"sqlite:///{tmp_path}/broker.sqlite3")


@dataclass(frozen=True)
class BrokerKind:
    open: Callable[[pytest.FixtureRequest, Path], BrokerEnv]
    spans_processes: bool  # known before the server is found, to choose the process tests


BROKERS: dict[str, BrokerKind] = {
    "memory": BrokerKind(memory_env, spans_processes=False),
    "sqlite": BrokerKind(sqlite_env, spans_processes=True),
    "rabbitmq": BrokerKind(rabbitmq_env, spans_processes=True),
    "redis": BrokerKind(redis_env, spans_processes=True),
}


def _open(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerEnv]:
    env = BROKERS[request.param].open(request, tmp_path)
    marker = request.node.get_closest_marker("needs")
    missing = set(marker.args) - env.features if marker else set()
    if missing:
        pytest.skip(f"the {request.param} broker does not implement {', '.join(sorted(missing))}")
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
