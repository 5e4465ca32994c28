"""The backend used when no result store is configured: it stores nothing."""

from __future__ import annotations

from collections.abc import Sequence

from ..exceptions import ConfigurationError
from ..serialization import Codec
from .base import Backend, TaskMeta

_WHY = (
    "no result_backend is configured, so results are not stored: set result_backend "
    "(redis://..., sqlite:///results.sqlite3, django-db://)"
)


class DisabledBackend(Backend):
    """Stores nothing; reading a result says how to configure a backend."""

    stores_results = False

    def __init__(self, codec: Codec, url: str = "disabled://", expires: float = 0.0) -> None:
        super().__init__(codec)
        self.url = url

    def store(self, metas: Sequence[TaskMeta]) -> None:
        pass

    def get_many(self, task_ids: Sequence[str]) -> dict[str, TaskMeta]:
        raise ConfigurationError(_WHY)

    def forget(self, task_ids: Sequence[str]) -> None:
        pass

    def save_group(self, group_id: str, task_ids: Sequence[str]) -> None:
        pass

    def get_group(self, group_id: str) -> list[str] | None:
        raise ConfigurationError(_WHY)

    def chord_part_done(self, group_id: str, index: int, size: int) -> bool:
        raise ConfigurationError(f"chords need a result backend: {_WHY}")
