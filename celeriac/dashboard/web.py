"""The ASGI app: ``create_app(celeriac_app, ...)``, mountable inside another ASGI app."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..events.event import Event
from ..exceptions import MissingExtraError

try:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles
    from starlette.types import ASGIApp, Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingExtraError("dashboard", exc.name or "starlette") from exc
try:
    import jinja2  # noqa: F401  (pages need it; say so now, not at the first request)
    import prometheus_client  # noqa: F401
except ImportError as exc:  # pragma: no cover
    raise MissingExtraError("dashboard", exc.name or "jinja2") from exc

from . import api, live, openapi, pages
from .access import Access, AccessMiddleware
from .collector import Collector
from .context import Dashboard
from .headers import SecurityHeaders
from .live import Changes
from .metrics import Metrics
from .store import Store

if TYPE_CHECKING:
    from ..app import Celeriac

logger = logging.getLogger("celeriac.dashboard")


def create_app(
    celeriac_app: Celeriac,
    store: Store | str | Path = "celeriac-dashboard.sqlite3",
    basic_auth: tuple[str, str] | None = None,
    api_token: str | None = None,
    read_only: bool = False,
    collect: bool = True,
    refresh_ms: int = 1000,
    live_interval: float = 0.5,
    viewer_auth: tuple[str, str] | None = None,
    viewer_token: str | None = None,
    **store_options: Any,
) -> Starlette:
    """The dashboard for ``celeriac_app``; its collector runs while the app is served.

    ``store`` is a :class:`Store`, the path of its SQLite file, or a database URL
    (``postgresql+psycopg://...``, ``mysql+pymysql://...``; ``store_options``:
    retention limits, ``table_prefix``). ``collect=False`` serves what the
    store holds without reading events (a second replica, tests).
    ``basic_auth`` and ``api_token`` let an operator look and act;
    ``viewer_auth`` and ``viewer_token`` let a viewer look only.
    """
    if not isinstance(store, Store):
        store = Store(store, **store_options)
    metrics = Metrics(store)
    changes = Changes(live_interval)

    def on_batch(events: Sequence[Event]) -> None:
        metrics.on_batch(events)
        changes.bump(events)

    collector = Collector(celeriac_app, store, on_batch=on_batch)
    access = Access(basic_auth, api_token, read_only, viewer_auth, viewer_token)
    board = Dashboard(celeriac_app, store, collector, access, metrics, refresh_ms, changes)

    starter = _CollectorStarter(collector if collect else None)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        starter.start()
        try:
            yield
        finally:
            changes.close()
            collector.stop()

    static = StaticFiles(directory=str(Path(__file__).with_name("static")))
    web = Starlette(
        routes=[
            *openapi.ROUTES,
            *api.ROUTES,
            *pages.ROUTES,
            *live.ROUTES,
            Mount("/static", static, name="static"),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(_StartCollector, starter=starter),
            Middleware(AccessMiddleware, access=access),
        ],
        lifespan=lifespan,
    )
    web.state.dashboard = board
    return web


class _CollectorStarter:
    """Starts the collector once: from the app's lifespan, or else at the first request."""

    def __init__(self, collector: Collector | None) -> None:
        self.collector = collector
        self.started = False

    def start(self, late: bool = False) -> None:
        if self.started or self.collector is None:
            return
        if late:
            logger.warning(
                "the dashboard's lifespan did not run (a mounted app's is not run by its "
                "host): its collector starts now and stops only with the process; enter "
                "dashboard.router.lifespan_context(dashboard) in the host's lifespan"
            )
        self.started = True
        self.collector.start()


class _StartCollector:
    """Starts the collector at the first request when no lifespan did (see docs/dashboard.md)."""

    def __init__(self, app: ASGIApp, starter: _CollectorStarter) -> None:
        self.app, self.starter = app, starter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.starter.started and scope["type"] == "http":
            self.starter.start(late=True)
        await self.app(scope, receive, send)
