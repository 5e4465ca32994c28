"""Celery's signals, observed from real workers (prefork and threads).

Given an app written as a Celery project (tests/compat/signals_app.py, only the
imports changed), when a real worker runs its tasks, expect each signal in the
process Celery documents: worker_init / worker_ready / worker_shutdown in the
worker's main process, worker_process_init in each prefork child, task signals
where the task runs, publish signals in the producer.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from celeriac.signals import Signal, task_success
from tests.compat.helpers import project_module, records
from tests.e2e.workers import StartWorker, wait_until


def test_connect_as_decorator_with_sender_and_dispatch_uid() -> None:
    # Given a signal of our own and receivers connected in each of Celery's ways
    sig = Signal("test_signal")
    seen: list[tuple[str, object]] = []

    @sig.connect
    def everyone(sender: object, **kwargs: object) -> str:
        seen.append(("everyone", sender))
        return "ok"

    @sig.connect(sender="only.this")
    def only(sender: object, **kwargs: object) -> None:
        seen.append(("only", sender))

    def broken(sender: object, **kwargs: object) -> None:
        raise RuntimeError("a broken receiver")

    sig.connect(broken, dispatch_uid="x")
    sig.connect(broken, dispatch_uid="x")  # once, however often connected
    # When it is sent for two senders
    first = sig.send(sender="only.this", value=1)
    sig.send(sender="other")
    # Expect the sender filter, one call per dispatch_uid, and a broken receiver logged
    # and returned, not raised
    assert seen == [("everyone", "only.this"), ("only", "only.this"), ("everyone", "other")]
    assert [type(r).__name__ for _, r in first] == ["str", "NoneType", "RuntimeError"]
    assert sig.disconnect(dispatch_uid="x") and len(sig.receivers) == 2


def test_an_unsent_celery_signal_is_not_defined() -> None:
    # A receiver for a signal celeriac never sends would wait forever: importing it fails.
    with pytest.raises(ImportError):
        from celeriac.signals import celeryd_init  # type: ignore[attr-defined]  # noqa: F401
    assert isinstance(task_success, Signal)


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_signals_fire_in_the_documented_process(
    pool: str, start_worker: StartWorker, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    log = tmp_path / "signals.log"
    env = {"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": url, "SIGNALS_LOG": str(log)}
    os.environ["SIGNALS_LOG"] = str(log)  # the producer's receivers record too
    try:
        with project_module("signals_app", tmp_path) as module:
            module.app.conf.update(broker_url=url, result_backend=url)
            worker = start_worker("signals_app", "-P", pool, "-c", "2", env=env)
            children = worker.children() if pool == "prefork" else []
            # When it runs a success, a failure, and a task that retries once
            ok = module.add.delay(2, 3)
            bad = module.fail.delay()
            flaky = module.flaky.delay()
            revoked = module.add.apply_async((1, 1), countdown=1)
            revoked.revoke()
            assert ok.get(timeout=20) == 5
            with pytest.raises(ValueError):
                bad.get(timeout=20)
            assert flaky.get(timeout=20) == "second time"
            wait_until(
                lambda: (
                    sum(r[0] == "task_postrun" for r in records(log)) >= 4
                    and any(r[0] == "task_revoked" for r in records(log))
                ),
                20,
                "four task_postrun records and a task_revoked",
            )
            assert worker.stop() == 0
            module.app.close()
    finally:
        del os.environ["SIGNALS_LOG"]
    lines = records(log)
    by_name: dict[str, list[list[str]]] = {}
    for line in lines:
        by_name.setdefault(line[0], []).append(line[1:])
    me, main = str(os.getpid()), str(worker.pid)
    # Expect the app signals, once each, in the worker (and in this producer, which
    # never finalized: it only sends)
    assert [pid for pid, _ in by_name["on_after_configure"]] == [main]
    assert [pid for pid, _ in by_name["on_after_finalize"]] == [main]
    # worker-level signals in its main process, once each
    for name in ("worker_init", "worker_ready", "worker_shutdown"):
        assert by_name[name] == [[main]], name
    runners = {str(c) for c in children} if pool == "prefork" else {main}
    if pool == "prefork":
        assert {pid for (pid,) in by_name["worker_process_init"]} == runners
        assert {pid for (pid,) in by_name["worker_process_shutdown"]} == runners
    else:
        assert "worker_process_init" not in by_name
    # publish signals in the producer (and where the retry was sent from), with the
    # header a receiver added arriving
    published = {(d[0], d[1]) for d in by_name["after_task_publish"]}
    assert {name for pid, name in published if pid == me} == {
        "signals_app.add",
        "signals_app.fail",
        "signals_app.flaky",
    }
    assert {pid for pid, name in published if pid != me} <= runners
    # task signals where the task ran
    assert all(d[0] in runners for name in ("task_prerun", "task_postrun") for d in by_name[name])
    assert ["signals_app.add", ok.id, "yes"] in [d[1:] for d in by_name["task_prerun"]]
    assert sorted(d[1:] for d in by_name["task_success"]) == [
        ["signals_app.add", ok.id, "5"],
        ["signals_app.flaky", flaky.id, "second", "time"],
    ]
    assert [d[1:] for d in by_name["task_failure"]] == [["signals_app.fail", bad.id, "ValueError"]]
    assert [d[1:] for d in by_name["task_retry"]] == [["signals_app.flaky", flaky.id, "KeyError"]]
    assert [d[1:] for d in by_name["task_revoked"]] == [["signals_app.add", revoked.id, "False"]]
    postrun = sorted(d[1:] for d in by_name["task_postrun"])
    assert postrun == sorted(
        [
            ["signals_app.add", ok.id, "SUCCESS"],
            ["signals_app.fail", bad.id, "FAILURE"],
            ["signals_app.flaky", flaky.id, "RETRY"],
            ["signals_app.flaky", flaky.id, "SUCCESS"],
        ]
    )
