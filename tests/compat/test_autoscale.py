"""``worker --autoscale=MAX,MIN``: given a prefork worker started with ``--autoscale=3,1``
and three tasks that wait for the test, expect three children running them at once,
then, once they finished and the keepalive passed, one child again."""

from __future__ import annotations

from pathlib import Path

import pytest

from celeriac.exceptions import ConfigurationError
from celeriac.worker.autoscale import parse_autoscale
from tests.compat.helpers import project_module
from tests.e2e.workers import StartWorker, wait_until


def test_the_pool_grows_with_the_queue_and_shrinks_when_idle(
    start_worker: StartWorker, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    env = {
        "CELERIAC_BROKER_URL": url,
        "CELERIAC_RESULT_BACKEND": url,
        "CELERIAC_WORKER_AUTOSCALE_KEEPALIVE": "1",
        "HOOKS_LOG": str(tmp_path / "hooks.log"),
    }
    with project_module("hooks_app", tmp_path) as module:
        module.app.conf.update(broker_url=url, result_backend=url)
        worker = start_worker("hooks_app", "--autoscale=3,1", "--prefetch-multiplier", "1", env=env)
        assert len(worker.children()) == 1
        gate = tmp_path / "gate"
        results = [module.progress.delay(1, f"{gate}{i}") for i in range(3)]
        # all three run at once: each reports its first step while none may finish
        wait_until(lambda: all(r.state == "PROGRESS" for r in results), 30, "3 running")
        assert len(worker.children()) == 3
        for i in range(3):
            Path(f"{gate}{i}.1").touch()
        assert [r.get(timeout=20) for r in results] == ["done"] * 3
        wait_until(lambda: len(worker.children()) == 1, 30, "back to one child")
        assert worker.stop() == 0
        module.app.close()


@pytest.mark.parametrize(
    ("value", "parsed"), [("10,3", (10, 3)), ("4", (4, 1)), (" 2 , 2 ", (2, 2))]
)
def test_autoscale_values(value: str, parsed: tuple[int, int]) -> None:
    assert parse_autoscale(value) == parsed


@pytest.mark.parametrize("value", ["3,5", "a,b", "0", "1,2,3"])
def test_bad_autoscale_values_are_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="--autoscale"):
        parse_autoscale(value)
