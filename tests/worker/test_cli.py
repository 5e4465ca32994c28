"""``celeriac worker``: bad input gets an error that says what to change."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from celeriac.cli.main import cli
from celeriac.exceptions import ConfigurationError

APP = ["-A", "tests.worker.memory_app:app", "worker"]


def test_prefork_on_the_memory_broker_is_refused_with_the_way_out() -> None:
    result = CliRunner().invoke(cli, [*APP, "-P", "prefork"])
    assert isinstance(result.exception, ConfigurationError)
    assert "memory:// broker lives inside one process" in str(result.exception)
    assert "-P threads" in str(result.exception)


def test_excluding_every_queue_is_refused() -> None:
    result = CliRunner().invoke(cli, [*APP, "-P", "solo", "-Q", "a", "-X", "a"])
    assert isinstance(result.exception, ConfigurationError)
    assert "no queue left to consume" in str(result.exception)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-P", "gevent"], "'gevent' is not one of"),
        (["-c", "0"], "0 is not in the range x>=1"),
        (["--time-limit", "0"], "--time-limit"),
        (["-l", "LOUD"], "'LOUD' is not one of"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, [*APP, *args])
    assert result.exit_code == 2
    assert message in result.output
