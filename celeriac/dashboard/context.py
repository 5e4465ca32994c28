"""What every route needs: the app, the store, the collector, access settings, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from .access import Access, csrf_ok, from_browser
from .collector import Collector
from .inspector import WorkerInspector
from .live import Changes
from .metrics import Metrics
from .store import Store

if TYPE_CHECKING:
    from ..app import Celeriac


@dataclass
class Dashboard:
    """One dashboard's state, at ``request.app.state.dashboard``."""

    app: Celeriac
    store: Store
    collector: Collector
    access: Access
    metrics: Metrics
    refresh_ms: int = 1000
    changes: Changes = field(default_factory=Changes)
    inspector: WorkerInspector = field(init=False)

    def __post_init__(self) -> None:
        self.inspector = WorkerInspector(self.app)


def dashboard(request: Request) -> Dashboard:
    return request.app.state.dashboard  # type: ignore[no-any-return]


async def action_params(request: Request) -> dict[str, Any]:
    """Query string, then form or JSON body, merged (Flower's scripts use all three)."""
    params: dict[str, Any] = dict(request.query_params)
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json"):
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
    elif kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    params.update(request.path_params)
    return params


def refused(request: Request, params: dict[str, Any]) -> Response | None:
    """The response refusing this action, or None when it may run."""
    board = dashboard(request)
    if board.access.read_only:
        return JSONResponse({"error": "the dashboard is read-only"}, status_code=403)
    if not board.access.operator(request):
        return JSONResponse(
            {"error": "these are a viewer's credentials: acting needs an operator's"},
            status_code=403,
        )
    browser = from_browser(request) and not board.access.token_ok(request)
    if browser and not csrf_ok(request, params.get("csrf_token")):
        return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
    return None


def _local(target: str) -> str:
    """Redirect only within the dashboard."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


# Query parameters a page gets for one view only: never carried back to it after an action.
TRANSIENT = frozenset({"msg", "failed", "partial"})


def page_url(path: str, query: str) -> str:
    """``path?query`` without the one-view parameters (the live part's ``partial=1``, the
    last action's message): where an action on this page sends the browser back to."""
    kept = [(key, value) for key, value in parse_qsl(query) if key not in TRANSIENT]
    return f"{path}?{urlencode(kept)}" if kept else path


def done(params: dict[str, Any], body: dict[str, Any], status: int = 200) -> Response:
    """JSON for a script; for a browser form (``next`` given), back to the full page (its
    query kept: a filtered list stays filtered) with the answer, marked as a failure when
    the action failed (the JSON answer's status is then 4xx)."""
    target = params.get("next")
    if target:
        message = body.get("message") or body.get("error") or ""
        path, _, query = _local(str(target)).partition("?")
        back = page_url(path, query)
        extra = [("msg", message)] + ([("failed", "1")] if status >= 400 else [])
        joiner = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{joiner}{urlencode(extra)}", status_code=303)
    return JSONResponse(body, status_code=status)


async def blocking(function: Any, *args: Any) -> Any:
    """Run a blocking call (broker, control, store) off the event loop."""
    return await run_in_threadpool(function, *args)
