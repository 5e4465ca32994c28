"""``app.on_after_configure``: Celery's signal, fired once when a worker or beat loads the app."""

from __future__ import annotations

from typing import Any

from celeriac import Celeriac


def test_receivers_run_once_with_the_app_as_sender() -> None:
    app = Celeriac("sig", broker="memory://sig", set_as_current=False)
    calls: list[tuple[Any, dict[str, Any]]] = []

    @app.on_after_configure.connect
    def setup(sender: Any, **kwargs: Any) -> None:
        calls.append((sender, kwargs))

    @app.on_after_configure.connect(weak=False)
    def also(sender: Any, **kwargs: Any) -> None:
        calls.append((sender, {}))

    assert calls == []
    app.import_modules()  # what a worker or beat does as it starts
    app.import_modules()
    assert [c[0] for c in calls] == [app, app]
    assert calls[0][1] == {"source": app.conf}
