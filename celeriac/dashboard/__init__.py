"""The dashboard: live views of the cluster with durable history, and a REST API.

``celeriac -A proj dashboard`` serves it; ``create_app(app)`` returns the ASGI
app to mount in another one. The collector and the store need SQLAlchemy (in the
``dashboard`` extra), and a driver for PostgreSQL or MySQL/MariaDB; the web part
needs the rest of the ``dashboard`` extra (Starlette, uvicorn, Jinja2,
prometheus-client), imported only when :func:`create_app` is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import MissingExtraError

try:
    import sqlalchemy  # noqa: F401  (checked here, before any module of the store needs it)
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("dashboard", exc.name or "sqlalchemy") from exc

from .collector import Collector
from .store import Store

if TYPE_CHECKING:
    from ..app import Celeriac


def create_app(celeriac_app: Celeriac, **options: Any) -> Any:
    """The dashboard's ASGI app for ``celeriac_app`` (see :func:`.web.create_app`)."""
    from .web import create_app as _create

    return _create(celeriac_app, **options)


__all__ = ["Collector", "Store", "create_app"]
