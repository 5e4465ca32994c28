"""``call``, ``result`` and ``purge`` from the command line."""

from __future__ import annotations

import threading

import orjson
from click.testing import CliRunner

from celeriac.cli.main import cli
from celeriac.worker.job import Executor
from tests.cli.cli_app import app

APP = ["-A", "tests.cli.cli_app:app"]


def work_one() -> None:
    executor = Executor(app, "w@test", "c", app.connect_broker(), app.connect_backend())
    [delivery] = app.broker.fetch(["celeriac"], "c", 1, 5.0)
    executor.process(delivery)
    executor.close()


def test_call_prints_the_id_then_result_reads_it() -> None:
    runner = CliRunner()
    sent = runner.invoke(cli, [*APP, "call", "tests.cli.cli_app.add", "--args", "[2, 3]"])
    assert sent.exit_code == 0, sent.output
    task_id = sent.output.strip()
    work_one()
    shown = runner.invoke(cli, [*APP, "result", task_id, "--json"])
    assert orjson.loads(shown.output)["result"] == 5
    assert orjson.loads(shown.output)["state"] == "SUCCESS"


def test_call_wait_prints_the_result() -> None:
    worker = threading.Thread(target=work_one)
    worker.start()
    out = CliRunner().invoke(
        cli, [*APP, "call", "tests.cli.cli_app.add", "-a", "[20, 22]", "--wait", "--timeout", "5"]
    )
    worker.join()
    assert out.exit_code == 0, out.output
    assert "result: 42" in out.output


def test_bad_json_arguments_are_explained() -> None:
    out = CliRunner().invoke(cli, [*APP, "call", "tests.cli.cli_app.add", "--args", "[1,"])
    assert out.exit_code == 2
    assert "--args must be JSON" in out.output
    out = CliRunner().invoke(cli, [*APP, "call", "tests.cli.cli_app.add", "--args", '{"a": 1}'])
    assert "must be a JSON list" in out.output


def test_purge_empties_queues() -> None:
    for i in range(3):
        app.send_task("tests.cli.cli_app.add", [i, i], queue="purgeme")
    out = CliRunner().invoke(cli, [*APP, "purge", "-Q", "purgeme", "-f"])
    assert out.exit_code == 0, out.output
    assert "3 messages purged" in out.output
    assert app.broker.stats("purgeme").total_waiting == 0


def test_missing_app_is_a_usage_error() -> None:
    out = CliRunner().invoke(cli, ["call", "x"], env={"CELERIAC_APP": ""})
    assert out.exit_code == 2
    assert "-A/--app" in out.output


def test_unimportable_app_is_explained() -> None:
    out = CliRunner().invoke(cli, ["-A", "no_such_project", "result", "x"])
    assert out.exit_code != 0
    assert "no_such_project" in str(out.exception) + out.output


def test_arguments_that_do_not_fit_the_task_are_a_usage_error() -> None:
    out = CliRunner().invoke(cli, [*APP, "call", "tests.cli.cli_app.add", "--args", "[1, 2, 3]"])
    assert out.exit_code == 2, out.output
    assert "do not fit the task" in out.output and "too many positional arguments" in out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)
