"""What a backend test knows about the backend under test: how to connect to it, fresh."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from celeriac.backends.base import Backend
from celeriac.serialization import Codec


@dataclass
class BackendEnv:
    """How to open connections to one fresh, isolated result store; picklable."""

    factory: str  # "module:Class", called as Class(codec, url, expires=, **options)
    url: str
    options: dict[str, Any] = field(default_factory=dict)
    spans_processes: bool = True  # connections from other processes see the same store
    _opened: list[Backend] = field(default_factory=list, repr=False)

    def connect(self, expires: float = 3600.0, codec: Codec | None = None) -> Backend:
        """A new connection (a new backend object) to this test's store."""
        module, _, attr = self.factory.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        backend: Backend = cls(codec or Codec(), self.url, expires=expires, **self.options)
        self._opened.append(backend)
        return backend

    def close(self) -> None:
        for backend in self._opened:
            backend.close()
        self._opened.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_opened"] = []
        return state
