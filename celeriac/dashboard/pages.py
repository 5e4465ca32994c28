"""The HTML pages: overview, workers, tasks, queues, schedules. Each refreshes its live part by
fetching itself with ``?partial=1`` (static/app.js): the overview and the task list
when ``/live`` says something changed (see :mod:`.live`), the others every second."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from ..control.waiting import check_kind, waiting_page
from ..exceptions import CapabilityUnavailable
from . import cluster
from .access import csrf_token, set_csrf_cookie
from .api import task_filter
from .bulk import BULK_ACTIONS, bulk_request, count_matches
from .compare import by_task_name, failures_grouped
from .context import blocking, dashboard, page_url
from .metrics import CONTENT_TYPE
from .queries import get_task, list_tasks, overview, task_types, workers
from .schedules import schedule_rows
from .standing import standing
from .times import RANGES
from .tree import workflow_tree

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
STATES = ("PENDING", "RECEIVED", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED", "REJECTED")


def _when(value: Any) -> str:
    if not value:
        return "-"
    return datetime.fromtimestamp(float(value)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _json(value: Any) -> str:
    return orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()


def _seconds(value: Any) -> str:
    if value is None:
        return "-"
    value = float(value)
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def rate(value: Any) -> str:
    """A rate for people: one decimal below 10 (2.5), whole numbers above (1,250)."""
    value = float(value or 0)
    if value == 0:
        return "0"
    if value < 0.1:
        return "< 0.1"
    if value < 10:
        return f"{value:.1f}"
    return f"{int(value + 0.5):,}"


def ago(value: Any, now: float | None = None) -> str:
    """A time for people, relative: ``12 s ago``, ``3 min ago``, ``2 h ago``, ``in 5 min``."""
    if not value:
        return "-"
    delta = (time.time() if now is None else now) - float(value)
    span = abs(delta)
    if span < 90:
        text = f"{span:.0f} s"
    elif span < 5400:
        text = f"{span / 60:.0f} min"
    elif span < 172_800:
        text = f"{span / 3600:.0f} h"
    else:
        text = f"{span / 86400:.0f} days"
    return f"{text} ago" if delta >= 0 else f"in {text}"


TEMPLATES.env.filters.update(when=_when, json=_json, seconds=_seconds, rate=rate, ago=ago)


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    board = dashboard(request)
    context.setdefault("stream", False)  # follow /live (server-sent events) instead of polling
    context.update(
        partial=request.query_params.get("partial") == "1",
        csrf=csrf_token(request),
        read_only=not board.access.may_act(request),  # read-only mode, or a viewer
        message=request.query_params.get("msg", ""),
        failed=request.query_params.get("failed") == "1",
        refresh_ms=board.refresh_ms,
        root=request.scope.get("root_path", ""),
        here=page_url(
            request.scope.get("root_path", "")
            + request.url.path.removeprefix(request.scope.get("root_path", "")),
            request.url.query,
        ),
    )
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status)
    set_csrf_cookie(request, response)
    return response


def chart(series: list[dict[str, Any]], width: int = 720, height: int = 120) -> dict[str, Any]:
    """Bars per minute (succeeded above failed), as SVG rectangles."""
    peak = max([s["succeeded"] + s["failed"] for s in series] + [1])
    step = width / max(len(series), 1)
    bars = []
    for i, point in enumerate(series):
        ok = height * point["succeeded"] / peak
        bad = height * point["failed"] / peak
        bars.append(
            {
                "x": i * step,
                "w": max(step - 1, 1),
                "ok": ok,
                "bad": bad,
                "title": f"{_when(point['minute'])[11:16]}: {point['succeeded']} ok, "
                f"{point['failed']} failed",
            }
        )
    ticks = [
        {"left": 100.0 * i / max(len(series), 1), "label": _when(point["minute"])[11:16]}
        for i, point in enumerate(series)
        if int(point["minute"]) % 600 == 0  # a time every ten minutes
    ]
    return {"bars": bars, "width": width, "height": height, "peak": peak, "ticks": ticks}


async def overview_page(request: Request) -> Response:
    board = dashboard(request)
    stats = await blocking(overview, board.store)
    found = await blocking(workers, board.store)
    try:
        queues = await blocking(cluster.queue_rows, board.app)
    except CapabilityUnavailable:  # a broker without presence or paused queues
        queues = []
    by_name = await blocking(by_task_name, board.store)
    failures = await blocking(failures_grouped, board.store)
    return render(
        request,
        "overview.html",
        stats=stats,
        by_name=by_name,
        failures=failures,
        chart=chart(stats["series"]),
        workers=found,
        online=sum(w["alive"] for w in found),
        queues=queues,
        stream=True,
    )


async def workers_page(request: Request) -> Response:
    return render(
        request, "workers.html", workers=await blocking(workers, dashboard(request).store)
    )


async def worker_page(request: Request) -> Response:
    board = dashboard(request)
    name = request.path_params["worker"]
    beat = next((w for w in await blocking(workers, board.store) if w["hostname"] == name), None)
    details = await blocking(board.inspector.details, name)
    return render(request, "worker.html", name=name, beat=beat, details=details)


async def tasks_page(request: Request) -> Response:
    board = dashboard(request)
    try:
        flt = task_filter(request.query_params)
    except ValueError as exc:
        return render(request, "missing.html", status=400, problem=str(exc))
    found = await blocking(list_tasks, board.store, flt)
    names = await blocking(task_types, board.store)
    query = {k: v for k, v in request.query_params.items() if k not in ("offset", "partial", "msg")}
    return render(
        request,
        "tasks.html",
        tasks=found,
        flt=flt,
        names=names,
        states=STATES,
        ranges=RANGES,
        query=query,
        bulk_fields={k: v for k, v in query.items() if k in FILTER_FIELDS and v},
        now=time.time(),  # a task delayed in the broker says until when
        stream=True,
    )


FILTER_FIELDS = (
    "state", "name", "taskname", "worker", "workername", "queue", "search", "since", "until",
)  # fmt: skip


async def bulk_page(request: Request) -> Response:
    """The confirmation of a bulk action: how many tasks the filter matches now."""
    params = dict(request.query_params)
    action = params.get("action", "")
    if action not in BULK_ACTIONS:
        problem = f"No bulk action {action!r}: use one of {', '.join(BULK_ACTIONS)}."
        return render(request, "missing.html", status=404, problem=problem)
    try:
        bulk = bulk_request(action, task_filter(params), params)
    except ValueError as exc:
        return render(request, "missing.html", status=400, problem=f"Bad filter: {exc}.")
    counted = await blocking(count_matches, dashboard(request).store, bulk)
    kept = {key: params[key] for key in FILTER_FIELDS if params.get(key)}
    return render(
        request,
        "bulk.html",
        counted=counted,
        fields=kept,
        back=urlencode(kept),
        live=False,  # a count once, not once a second: the form carries this one
    )


async def task_page(request: Request) -> Response:
    board = dashboard(request)
    task = await blocking(get_task, board.store, request.path_params["task_id"])
    if task is None:
        return render(request, "missing.html", what=request.path_params["task_id"])
    tree = await blocking(workflow_tree, board.app, board.store, task)
    shown = await blocking(standing, board, task)
    return render(request, "task.html", task=task, shown=shown, tree=tree, now=time.time())


async def queues_page(request: Request) -> Response:
    board = dashboard(request)
    return render(request, "queues.html", queues=await blocking(cluster.queue_rows, board.app))


async def queue_page(request: Request) -> Response:
    board = dashboard(request)
    queue = request.path_params["queue"]
    rows = await blocking(cluster.queue_rows, board.app)
    row = next((r for r in rows if r["queue"] == queue), None)
    dead = await blocking(cluster.dead_letters, board.app, queue)
    params = request.query_params
    try:
        kind, offset = (
            check_kind(params.get("kind") or "waiting"),
            max(0, int(params.get("offset") or 0)),
        )
    except ValueError as exc:
        return render(request, "missing.html", status=400, problem=str(exc))
    newest = params.get("newest") == "1"
    try:
        page = await blocking(waiting_page, board.app, queue, kind, PAGE, offset, newest)
    except (CapabilityUnavailable, ValueError) as exc:  # ValueError: a page out of reach
        page = {"unavailable": str(exc)}
    return render(
        request, "queue.html", queue=queue, row=row, dead=dead, page=page, kind=kind,
        offset=offset, newest=newest, size=PAGE, now=time.time(),
    )  # fmt: skip


PAGE = 50  # messages of a queue per page


async def schedules_page(request: Request) -> Response:
    board = dashboard(request)
    return render(request, "schedules.html", **await blocking(schedule_rows, board))


def _scrape(request: Request) -> bytes:
    board = dashboard(request)
    return board.metrics.scrape(workers(board.store), lambda: cluster.queue_rows(board.app))


async def metrics_page(request: Request) -> Response:
    return Response(await blocking(_scrape, request), media_type=CONTENT_TYPE)


ROUTES = [
    Route("/", overview_page),
    Route("/workers", workers_page),
    Route("/worker/{worker}", worker_page),
    Route("/tasks", tasks_page),
    Route("/tasks/bulk", bulk_page),
    Route("/task/{task_id}", task_page),
    Route("/queues", queues_page),
    Route("/queue/{queue}", queue_page),
    Route("/schedules", schedules_page),
    Route("/metrics", metrics_page),
]
