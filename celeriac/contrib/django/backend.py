"""``result_backend = "django-db://"``: results in a table of the Django database.

``django-db://`` uses the ``default`` database, ``django-db://<alias>`` another
one from ``DATABASES``. Works on SQLite and PostgreSQL.

* Writes are upserts, one statement per batch.
* A chord's join is atomic without locks: each finished header task inserts
  its ``(group_id, index)`` row (a redelivery inserts nothing), and the caller
  that sees the set complete inserts the join marker; the unique constraint lets
  exactly one caller succeed.
* Rows expire ``result_expires`` after they were written: reads skip expired
  rows, and every process that writes deletes expired rows, a bounded batch by
  the ``expires_at`` index, at most every ``sweep_interval`` seconds.
* A connection the database dropped (a restart) is replaced and the statement
  tried once more, unless the caller is inside a transaction.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from ...backends.base import DEFAULT_RESULT_EXPIRES, Backend, TaskMeta
from ...exceptions import BackendError, ConfigurationError
from .bootstrap import ensure_setup

if TYPE_CHECKING:
    from ...serialization import Codec

logger = logging.getLogger("celeriac.django")

T = TypeVar("T")
_CHUNK = 500  # ids per IN (...) list: well under SQLite's limit on bound variables
_RESULT_FIELDS = ("name", "state", "queue", "worker", "group_id", "date_done", "expires_at", "meta")


def to_datetime(timestamp: float) -> datetime:
    """A unix time as Django stores it: aware UTC with ``USE_TZ``, naive local time without."""
    from django.conf import settings
    from django.utils import timezone as django_timezone

    value = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return value if settings.USE_TZ else django_timezone.make_naive(value)


def _alias_of(url: str) -> str:
    from django.db import connections

    alias = url.split("://", 1)[1].strip("/") or "default"
    if alias not in connections.settings:
        raise ConfigurationError(
            f"result_backend {url!r} names database {alias!r}, which is not in DATABASES "
            f"({', '.join(connections.settings)}): use django-db:// for 'default' or "
            "django-db://<alias>"
        )
    return alias


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


class DjangoBackend(Backend):
    """Task results in the Django database, with an admin; see the module docstring."""

    poll_interval = 0.005
    max_poll_interval = 0.1
    sweep_batch = 1000

    def __init__(
        self, codec: Codec, url: str = "django-db://", expires: float = DEFAULT_RESULT_EXPIRES
    ) -> None:
        super().__init__(codec)
        ensure_setup()
        from django.apps import apps

        if not apps.is_installed("celeriac.contrib.django"):
            raise ConfigurationError(
                "result_backend django-db:// stores results in tables of the app "
                "'celeriac.contrib.django': add it to INSTALLED_APPS and run manage.py migrate"
            )
        self.url = url
        self.expires = expires
        self.alias = _alias_of(url)
        self.sweep_interval = min(60.0, max(expires / 2, 0.1))
        self._next_sweep = 0.0

    # -- the connection: one statement retried once after the database dropped it ------
    def _run(self, operation: Callable[[], T], what: str) -> T:
        from django.db import DatabaseError, InterfaceError, OperationalError, connections

        try:
            try:
                return operation()
            except (OperationalError, InterfaceError):
                conn = connections[self.alias]
                if conn.in_atomic_block:  # the caller's transaction is broken: theirs to handle
                    raise
                with contextlib.suppress(DatabaseError):
                    conn.close()
                return operation()
        except DatabaseError as exc:
            raise BackendError(
                f"django-db ({self.alias}) could not {what}: {exc} (has manage.py migrate run?)"
            ) from exc

    # -- task records --------------------------------------------------------------------
    def store(self, metas: Sequence[TaskMeta]) -> None:
        from .models import TaskResult

        now = time.time()
        expires_at = to_datetime(now + self.expires)
        rows = {
            meta.task_id: TaskResult(
                task_id=meta.task_id,
                name=(meta.name or "")[:255] or None,
                state=meta.state,
                queue=(meta.queue or "")[:255] or None,
                worker=(meta.worker or "")[:255] or None,
                group_id=meta.group_id,
                date_done=to_datetime(meta.date_done) if meta.date_done else None,
                expires_at=expires_at,
                meta=meta.to_bytes(self.codec),
            )
            for meta in metas
        }  # one row per id: an upsert may not touch a row twice

        def write() -> None:
            TaskResult.objects.using(self.alias).bulk_create(
                list(rows.values()),
                update_conflicts=True,
                unique_fields=("task_id",),
                update_fields=_RESULT_FIELDS,
            )

        self._run(write, "store results")
        self._sweep_now_and_then(now)

    def get_many(self, task_ids: Sequence[str]) -> dict[str, TaskMeta]:
        from .models import TaskResult

        now = to_datetime(time.time())

        def read() -> list[tuple[str, Any]]:
            rows: list[tuple[str, Any]] = []
            for chunk in _chunks(list(task_ids)):
                query = TaskResult.objects.using(self.alias).filter(
                    task_id__in=chunk, expires_at__gte=now
                )
                rows += query.values_list("task_id", "meta")
            return rows

        return {
            task_id: TaskMeta.from_bytes(bytes(meta), self.codec)
            for task_id, meta in self._run(read, "read results")
        }

    def forget(self, task_ids: Sequence[str]) -> None:
        from .models import TaskResult

        def delete() -> None:
            for chunk in _chunks(list(task_ids)):
                TaskResult.objects.using(self.alias).filter(task_id__in=chunk).delete()

        self._run(delete, "forget results")

    # -- groups and chords -----------------------------------------------------------------
    def save_group(self, group_id: str, task_ids: Sequence[str]) -> None:
        from .models import GroupResult

        row = GroupResult(
            group_id=group_id,
            task_ids=list(task_ids),
            expires_at=to_datetime(time.time() + self.expires),
        )

        def write() -> None:
            GroupResult.objects.using(self.alias).bulk_create(
                [row],
                update_conflicts=True,
                unique_fields=("group_id",),
                update_fields=("task_ids", "expires_at"),
            )

        self._run(write, "save a group")

    def get_group(self, group_id: str) -> list[str] | None:
        from .models import GroupResult

        now = to_datetime(time.time())

        def read() -> list[str] | None:
            query = GroupResult.objects.using(self.alias).filter(
                group_id=group_id, expires_at__gte=now
            )
            found = query.values_list("task_ids", flat=True).first()
            return None if found is None else list(found)

        return self._run(read, "read a group")

    def chord_part_done(self, group_id: str, index: int, size: int) -> bool:
        from django.db import IntegrityError, transaction

        from .models import ChordPart

        parts = ChordPart.objects.using(self.alias)
        expires_at = to_datetime(time.time() + self.expires)

        def record_and_count() -> int:
            row = ChordPart(group_id=group_id, index=index, expires_at=expires_at)
            parts.bulk_create([row], ignore_conflicts=True)
            return int(parts.filter(group_id=group_id, index__gte=0).count())

        if self._run(record_and_count, "count a chord's parts") < size:
            return False
        # Not retried: had the marker gone in before a connection failure, a retry would
        # see it and wrongly report that someone else joined the chord.
        try:
            with transaction.atomic(using=self.alias):  # a savepoint inside a caller's transaction
                parts.create(group_id=group_id, index=ChordPart.JOINED, expires_at=expires_at)
        except IntegrityError:
            return False  # another caller completed the set first
        except Exception as exc:
            raise BackendError(f"django-db ({self.alias}) could not join chord: {exc}") from exc
        return True

    # -- expiry ------------------------------------------------------------------------------
    def _sweep_now_and_then(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_interval
        try:
            self.delete_expired(now)
        except Exception as exc:  # expiry can wait for the next write; results cannot
            logger.warning("django-db: could not delete expired results: %s", exc)

    def delete_expired(self, now: float | None = None) -> int:
        """Delete up to ``sweep_batch`` expired rows of each table; returns how many."""
        from django.db import transaction

        from .models import ChordPart, GroupResult, TaskResult

        cutoff = to_datetime(time.time() if now is None else now)
        deleted = 0
        with transaction.atomic(using=self.alias):
            for model in (TaskResult, GroupResult, ChordPart):
                manager: Any = model.objects.using(self.alias)
                expired = manager.filter(expires_at__lt=cutoff).values_list("pk", flat=True)
                pks = list(expired[: self.sweep_batch])
                if pks:
                    deleted += int(manager.filter(pk__in=pks).delete()[0])
        return deleted
