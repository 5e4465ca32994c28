"""``delay_on_commit``: send a task only once the surrounding transaction commits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def on_commit(callback: Callable[[], Any], using: str | None = None) -> None:
    """Run ``callback`` when the current transaction on ``using`` commits.

    Outside a transaction (autocommit) it runs at once; on rollback never. When
    Django has no settings, there is no transaction to wait for: it runs at once.
    """
    from django.conf import settings

    if not settings.configured:
        callback()
        return
    from django.db import transaction

    transaction.on_commit(callback, using=using)
