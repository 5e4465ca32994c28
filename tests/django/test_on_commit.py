"""delay_on_commit: sent after the transaction commits, never on rollback."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from .inprocess import running_worker


def _waiting(app: Any, queue: str = "celeriac") -> int:
    return int(app.broker.stats(queue).total_waiting)


class _Rollback(Exception):
    pass


def test_nothing_is_sent_when_the_transaction_rolls_back(app: Any) -> None:
    from cworker.dbtasks import welcome
    from cworker.models import Signup

    with pytest.raises(_Rollback), transaction.atomic():
        signup = Signup.objects.create(email="bob@example.com")
        result = welcome.delay_on_commit(signup.id)
        raise _Rollback
    assert _waiting(app) == 0
    assert result.state == "PENDING"


def test_sent_once_the_transaction_commits_not_before(app: Any) -> None:
    from cworker.dbtasks import welcome
    from cworker.models import Signup

    with transaction.atomic():
        signup = Signup.objects.create(email="ada@example.com")
        result = welcome.delay_on_commit(signup.id)
        assert _waiting(app) == 0  # the worker could not see the row yet
    assert _waiting(app) == 1
    # Expect the worker to find the committed row, by the id fixed at the call
    with running_worker(app, ["celeriac"]):
        assert result.get(timeout=10) == "welcomed ada@example.com"
    signup.refresh_from_db()
    assert signup.welcomed_at is not None


def test_a_nested_rollback_drops_only_its_own_tasks(app: Any) -> None:
    from cworker.tasks import add

    with transaction.atomic():
        add.delay_on_commit(1, 1)
        with pytest.raises(_Rollback), transaction.atomic():
            add.delay_on_commit(2, 2)
            raise _Rollback
    assert _waiting(app) == 1


def test_outside_a_transaction_it_sends_at_once(app: Any) -> None:
    from cworker.tasks import add

    add.delay_on_commit(1, 2)
    assert _waiting(app) == 1


def test_wrong_arguments_fail_at_the_call_not_at_commit(app: Any) -> None:
    from cworker.tasks import add

    with pytest.raises(TypeError, match="cworker.tasks.add"), transaction.atomic():
        add.delay_on_commit(1, 2, 3)
