"""Signatures: partial application, options, and the form that travels in messages."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from celeriac import Celeriac, Signature, chain, chord, group, signature
from celeriac.exceptions import ConfigurationError, NotRegistered

from .conftest import InProcessWorker


def test_s_and_si_are_plain_typed_objects(app: Celeriac) -> None:
    add = app.tasks["t.add"]
    sig = add.s(1, 2)
    assert isinstance(sig, Signature) and not isinstance(sig, dict)
    assert (sig.task, sig.args, sig.kwargs, sig.immutable) == ("t.add", (1, 2), {}, False)
    assert add.si(1, 2).immutable
    assert sig.type is add
    assert repr(add.si(1, b=2)) == "t.add(1, b=2)!"


def test_partial_arguments_come_after_the_new_ones(app: Celeriac) -> None:
    # Given a partial signature (Celery semantics: new args are prepended)
    partial = app.tasks["t.record"].s(2, 3, x=1)
    # When it is cloned with more arguments
    full = partial.clone((1,), {"x": 9, "y": 2})
    # Expect: new positional first, new keywords win; the original is untouched
    assert full.args == (1, 2, 3) and full.kwargs == {"x": 9, "y": 2}
    assert partial.args == (2, 3) and partial.kwargs == {"x": 1}
    # and an immutable signature ignores both
    frozen = app.tasks["t.record"].si(2).clone((1,), {"x": 9})
    assert frozen.args == (2,) and frozen.kwargs == {}


def test_calling_a_signature_runs_the_function_here(app: Celeriac) -> None:
    assert app.tasks["t.add"].s(2)(1) == 3


def test_set_changes_options_and_refuses_unknown_ones(app: Celeriac) -> None:
    sig = app.tasks["t.add"].s(1, 2).set(queue="q", priority=7, countdown=5)
    assert sig.options == {"queue": "q", "priority": 7, "countdown": 5}
    with pytest.raises(ConfigurationError, match=r"unknown option\(s\) \['qeue'\].*known options"):
        sig.set(qeue="q")
    with pytest.raises(ConfigurationError, match="priority 12 is out of range"):
        sig.set(priority=12)


def test_signature_by_name_with_options(app: Celeriac) -> None:
    sig = signature("t.add", (1,), {"b": 2}, queue="q", app=app)
    assert (sig.task, sig.args, sig.kwargs, sig.options) == (
        "t.add",
        (1,),
        {"b": 2},
        {"queue": "q"},
    )
    assert signature(sig.to_dict(), app=app) == sig
    with pytest.raises(TypeError, match="needs a task or a task name"):
        Signature(42)


def test_to_dict_and_back_for_every_form(app: Celeriac) -> None:
    add, tsum = app.tasks["t.add"], app.tasks["t.tsum"]
    callback = app.tasks["t.record"].s()
    when = datetime(2030, 1, 2, tzinfo=timezone.utc)
    forms: list[Signature] = [
        add.s(1, 2).set(queue="q", eta=when, link=callback, link_error=callback),
        add.si(1, 2),
        chain(add.s(1, 2), add.s(3)),
        group(add.s(i, i) for i in range(3)).set(priority=2),
        chord([add.s(1, 1), add.s(2, 2)], tsum.s()),
        chain(add.s(1, 1), group(add.s(1), add.s(2)), tsum.s()),
    ]
    for sig in forms:
        again = Signature.from_dict(sig.to_dict(), app)
        assert type(again) is type(sig)
        assert again.to_dict() == sig.to_dict()


def test_from_dict_refuses_what_is_not_a_signature(app: Celeriac) -> None:
    with pytest.raises(ConfigurationError, match="names no task"):
        Signature.from_dict({"args": []}, app)
    with pytest.raises(ConfigurationError, match="unknown workflow type"):
        Signature.from_dict({"subtask_type": "spiral"}, app)


def test_delay_and_apply_async_send_with_partial_arguments(app: Celeriac, worker: Any) -> None:
    worker()
    add = app.tasks["t.add"]
    assert add.s(2).delay(1).get(timeout=10) == 3
    assert add.s(2).apply_async((40,), queue="celeriac").get(timeout=10) == 42


def test_a_signature_keeps_its_options_when_sent(app: Celeriac, worker: Any) -> None:
    # Given a worker on "other" only, and a signature set to go there
    worker("other")
    result = app.tasks["t.add"].s(1, 2).set(queue="other").delay()
    assert result.get(timeout=10) == 3


def test_unknown_task_fails_with_a_clear_error(app: Celeriac, worker: Any) -> None:
    worker()
    result = signature("nobody.knows", (1,), app=app).delay()
    with pytest.raises(NotRegistered, match="'nobody.knows' is not registered on worker"):
        result.get(timeout=10)


def test_an_unknown_task_in_a_chain_fails_the_chain(app: Celeriac, worker: Any) -> None:
    worker()
    result = (
        app.tasks["t.add"].s(1, 2) | signature("nobody.knows", app=app) | app.tasks["t.add"].s(1)
    ).delay()
    with pytest.raises(NotRegistered, match="nobody.knows"):
        result.get(timeout=10)


def test_eager_unknown_task_fails_at_once(app: Celeriac) -> None:
    with pytest.raises(NotRegistered, match="nobody.knows"):
        signature("nobody.knows", app=app).apply()


def test_in_process_worker_fixture_can_fail(app: Celeriac) -> None:
    # The helper every test here relies on reports a dying consumer thread.
    w = InProcessWorker(app, ("celeriac",), threads=1)
    w.errors.append(RuntimeError("consumer died"))
    with pytest.raises(AssertionError, match="consumer died"):
        w.close()


def test_arguments_inside_workflows_keep_their_types(
    app: Celeriac, worker: Any, calls: Any
) -> None:
    # Given a datetime that rides inside a callback, not in the first message's args
    worker()
    when = datetime(2030, 1, 2, 3, 4, tzinfo=timezone.utc)
    record = app.tasks["t.record"]
    assert (app.tasks["t.add"].s(1, 2) | record.s(when)).delay().get(timeout=10) == 3
    assert calls.named("record") == [((3, when), {})]
