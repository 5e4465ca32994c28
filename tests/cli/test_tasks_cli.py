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


def test_result_exit_codes_say_how_a_task_stands() -> None:
    """Expect 0 for SUCCESS, 1 for FAILURE and REVOKED (as call --wait), 3 for a task the
    backend knows that has not finished, 4 (and why, on stderr) for an id it has no record of."""
    from celeriac import states
    from celeriac.backends.base import TaskMeta

    runner = CliRunner()
    backend = app.backend
    backend.store(
        [
            TaskMeta("exit-ok", states.SUCCESS, 1),
            TaskMeta("exit-failed", states.FAILURE, {"exc_type": "ValueError", "exc_message": "x"}),
            TaskMeta("exit-revoked", states.REVOKED, None),
            TaskMeta("exit-started", states.STARTED, None),
        ]
    )
    codes = {
        task_id: runner.invoke(cli, [*APP, "result", task_id]).exit_code
        for task_id in ("exit-ok", "exit-failed", "exit-revoked", "exit-started")
    }
    assert codes == {"exit-ok": 0, "exit-failed": 1, "exit-revoked": 1, "exit-started": 3}
    unknown = runner.invoke(cli, [*APP, "result", "not-a-real-id"])
    assert unknown.exit_code == 4
    assert "PENDING" in unknown.stdout and "no record of not-a-real-id" in unknown.stderr
    waited = runner.invoke(cli, [*APP, "result", "not-a-real-id", "--wait", "--timeout", "0.2"])
    assert waited.exit_code == 3 and "not ready" in waited.stderr


def test_call_wait_exits_1_for_a_failure() -> None:
    worker = threading.Thread(target=work_one)
    worker.start()
    out = CliRunner().invoke(
        cli, [*APP, "call", "tests.cli.cli_app.add", "-a", '["a", 1]', "--wait", "--timeout", "5"]
    )
    worker.join()
    assert out.exit_code == 1 and "TypeError" in out.output, out.output


def test_queues_show_lists_what_waits_and_act_runs_a_delayed_one_now() -> None:
    """Given waiting and delayed messages on a queue, Expect `queues show` to list them
    (waiting in take order, delayed with why and when), as JSON too, and `queues act
    run-now` to move a delayed one to the queue; an id not there exits 1."""
    import time

    runner = CliRunner()
    q = f"show-{time.monotonic_ns()}"
    low = app.send_task("tests.cli.cli_app.add", [1, 1], queue=q, priority=1)
    high = app.send_task("tests.cli.cli_app.add", [2, 2], queue=q, priority=8)
    later = app.send_task("tests.cli.cli_app.add", [3, 3], queue=q, countdown=600)
    shown = runner.invoke(cli, [*APP, "queues", "show", q])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == f"{q}: 2 waiting messages, 1-2 shown"
    assert high.id in lines[1] and "tests.cli.cli_app.add[2,2] p8" in lines[1]
    assert low.id in lines[2]
    delayed = runner.invoke(cli, [*APP, "queues", "show", q, "--delayed"])
    assert f"{q}: 1 delayed message" in delayed.output
    assert later.id in delayed.output and "countdown / eta" in delayed.output
    page = orjson.loads(
        runner.invoke(cli, [*APP, "queues", "show", q, "--json", "--newest"]).output
    )
    assert [m["id"] for m in page["messages"]] == [low.id, high.id] and page["count"] == 2
    moved = runner.invoke(cli, [*APP, "queues", "act", "run-now", q, later.id])
    assert moved.exit_code == 0 and "1 message run now" in moved.output
    assert app.broker.stats(q).total_waiting == 3 and app.broker.stats(q).delayed == 0
    missing = runner.invoke(cli, [*APP, "queues", "act", "delete", q, "no-such-id"])
    assert missing.exit_code == 1 and "0 messages deleted of 1 asked" in missing.output
    assert runner.invoke(cli, [*APP, "queues", "--json"]).exit_code == 0  # still the summary


def test_arguments_that_do_not_fit_the_task_are_a_usage_error() -> None:
    out = CliRunner().invoke(cli, [*APP, "call", "tests.cli.cli_app.add", "--args", "[1, 2, 3]"])
    assert out.exit_code == 2, out.output
    assert "do not fit the task" in out.output and "too many positional arguments" in out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)
