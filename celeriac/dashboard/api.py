"""The JSON API: the dashboard's own endpoints and Flower's paths with Flower's shapes.

Reads are GETs; every action is a POST (see :mod:`.access` for who may send
one). Parameters come from the query string, a form or a JSON body.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, get_args

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..brokers.capabilities import require
from ..control.inventory import remove_queue
from ..control.waiting import Action as MessageAction
from ..control.waiting import act as act_on_messages
from ..control.waiting import waiting_page
from ..events.worker import forget_presence
from ..exceptions import CapabilityUnavailable, ConfigurationError
from ..text import counted
from . import cluster
from .bulk import BulkConflict, bulk_request, count_matches, run_bulk
from .context import Dashboard, action_params, blocking, dashboard, done, refused
from .queries import TaskFilter, get_task, list_tasks, overview, task_types, workers
from .schedules import SCHEDULE_ACTIONS, schedule_action, schedule_rows
from .times import time_range

Action = Callable[[Dashboard, dict[str, Any]], dict[str, Any]]
#: How long an action waits for the workers' answers: a click, not a page refresh, so a
#: loaded worker gets longer than a query's second; live workers usually answer in ms.
ACTION_TIMEOUT = 3.0


class _JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=repr, option=orjson.OPT_NON_STR_KEYS)


def task_filter(params: Any) -> TaskFilter:
    """Flower's names (``taskname``, ``workername``) and ours; ValueError when one is wrong."""
    since, until = time_range(params.get("since"), params.get("until"), time.time())
    return TaskFilter(
        state=params.get("state", ""),
        name=params.get("taskname") or params.get("name", ""),
        worker=params.get("workername") or params.get("worker", ""),
        queue=params.get("queue", ""),
        search=params.get("search", ""),
        limit=min(cluster.int_arg(params.get("limit"), 50), 1000),
        offset=max(0, int(params.get("offset") or 0)),
        since=since,
        until=until,
    )


def _flower_task(task: dict[str, Any]) -> dict[str, Any]:
    return {"uuid": task["id"], **{k: v for k, v in task.items() if k != "timeline"}}


# -- reads ------------------------------------------------------------------------------
async def api_workers(request: Request) -> Response:
    board = dashboard(request)
    found = await blocking(workers, board.store)
    return _JSON({w["hostname"]: w for w in found})


async def api_tasks(request: Request) -> Response:
    board = dashboard(request)
    try:
        flt = task_filter(request.query_params)
    except ValueError as exc:
        return _JSON({"error": str(exc)}, status_code=400)
    found = await blocking(list_tasks, board.store, flt)
    return _JSON({task["id"]: _flower_task(task) for task in found})


async def api_task_types(request: Request) -> Response:
    return _JSON({"task-types": await blocking(task_types, dashboard(request).store)})


async def api_queue_lengths(request: Request) -> Response:
    rows = await blocking(cluster.queue_rows, dashboard(request).app)
    return _JSON({"active_queues": [{"name": r["queue"], "messages": r["waiting"]} for r in rows]})


async def api_queues(request: Request) -> Response:
    return _JSON(await blocking(cluster.queue_rows, dashboard(request).app))


async def api_dead_letters(request: Request) -> Response:
    board = dashboard(request)
    return _JSON(await blocking(cluster.dead_letters, board.app, request.path_params["queue"]))


def _page_params(params: Any) -> tuple[str, int, int, bool]:
    """kind, limit, offset, newest first: of a page of a queue's messages."""
    return (
        str(params.get("kind") or "waiting"),
        cluster.int_arg(params.get("limit"), 50),
        max(0, int(params.get("offset") or 0)),
        str(params.get("newest", "")).lower() in ("1", "true", "yes", "on"),
    )


async def api_queue_messages(request: Request) -> Response:
    """``GET /api/queue/{queue}/messages?kind=waiting|delayed|reserved&limit&offset&newest``."""
    app = dashboard(request).app
    try:
        kind, limit, offset, newest = _page_params(request.query_params)
        page = await blocking(
            waiting_page, app, request.path_params["queue"], kind, limit, offset, newest
        )
    except ValueError as exc:
        return _JSON({"error": str(exc)}, status_code=400)
    except CapabilityUnavailable as exc:
        return _JSON({"error": str(exc)}, status_code=409)
    return _JSON(page)


async def api_task_info(request: Request) -> Response:
    task = await blocking(get_task, dashboard(request).store, request.path_params["task_id"])
    if task is None:
        return _JSON({"error": "unknown task"}, status_code=404)
    return _JSON(_flower_task(task))


def _result(board: Dashboard, task_id: str) -> dict[str, Any]:
    result = board.app.AsyncResult(task_id)
    state = result.state
    value: Any = None
    if result.ready():
        value = result.result if state == "SUCCESS" else repr(result.result)
    return {"task-id": task_id, "state": state, "result": value}


async def api_task_result(request: Request) -> Response:
    board = dashboard(request)
    return _JSON(await blocking(_result, board, request.path_params["task_id"]))


async def api_overview(request: Request) -> Response:
    return _JSON(await blocking(overview, dashboard(request).store))


async def api_worker(request: Request) -> Response:
    board = dashboard(request)
    return _JSON(await blocking(board.inspector.details, request.path_params["worker"]))


async def api_bulk_count(request: Request) -> Response:
    """``GET /api/tasks/bulk/{action}``: how many tasks the filter matches (the dry run)."""
    try:
        flt = task_filter(request.query_params)
        bulk = bulk_request(request.path_params["action"], flt, dict(request.query_params))
    except LookupError as exc:
        return _JSON({"error": str(exc)}, status_code=404)
    except ValueError as exc:
        return _JSON({"error": str(exc)}, status_code=400)
    return _JSON(await blocking(count_matches, dashboard(request).store, bulk))


async def healthcheck(request: Request) -> Response:
    collector = dashboard(request).collector
    if collector.last_error:
        return Response(f"collector failing: {collector.last_error}", status_code=503)
    return Response("OK", media_type="text/plain")


# -- actions ----------------------------------------------------------------------------
def _apply(board: Dashboard, params: dict[str, Any]) -> dict[str, Any]:
    args = params.get("args") or []
    kwargs = params.get("kwargs") or {}
    if isinstance(args, str):
        args = orjson.loads(args)
    if isinstance(kwargs, str):
        kwargs = orjson.loads(kwargs)
    options = {k: params[k] for k in ("queue", "countdown", "priority", "eta") if k in params}
    result = board.app.send_task(params["name"], args, kwargs, **options)
    return {"task-id": result.id, "state": "PENDING"}


def _revoke(board: Dashboard, params: dict[str, Any]) -> dict[str, Any]:
    task_id = str(params["task_id"])
    terminate = str(params.get("terminate", "")).lower() in ("1", "true", "yes", "on")
    app = board.app
    revocations = require(app.broker, app.broker.revocations, "revocations", "revoking tasks")
    revocations.revoke([task_id], float(app.conf.task_revoke_ttl))
    replies = app.control.on_revoke(
        [task_id], terminate, str(params.get("signal", "SIGTERM")), True, ACTION_TIMEOUT
    )
    return {"message": _revoked_message(task_id, replies), "replies": replies}


def _revoked_message(task_id: str, replies: list[dict[str, Any]]) -> str:
    """What the workers said about a revoked task, in a sentence."""
    for reply in replies:
        for host, value in reply.items():
            if isinstance(value, dict) and task_id in (value.get("terminated") or ()):
                return f"Revoked '{task_id}' and terminated it on {host}: REVOKED (terminated)"
    runs = [host for reply in replies for host, value in reply.items()
            if isinstance(value, dict) and task_id in (value.get("running") or ())]  # fmt: skip
    if runs:
        return (
            f"Revoked '{task_id}': it runs on {', '.join(runs)} and will finish "
            "(Terminate stops it)"
        )
    return f"Revoked '{task_id}': no worker runs it, it will not start"


def _retry(board: Dashboard, params: dict[str, Any]) -> dict[str, Any]:
    new_id = cluster.retry_task(board.app, board.store, params["task_id"])
    return {"message": f"Sent again as {new_id}", "task-id": new_id}


def _bulk(board: Dashboard, params: dict[str, Any]) -> dict[str, Any]:
    bulk = bulk_request(params["action"], task_filter(params), params)
    if str(params.get("dry_run", "")).lower() in ("1", "true", "yes", "on"):
        return count_matches(board.store, bulk)
    return run_bulk(board.app, board.store, bulk)


class Refused(Exception):
    """Every worker asked refused the action (or none answered): the answer is a 4xx."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def _destination(params: dict[str, Any]) -> list[str] | None:
    name = params.get("workername") or params.get("worker")
    return [str(name)] if name else None


def answered(replies: list[dict[str, Any]], asked: list[str] | None) -> dict[str, Any]:
    """The workers' own answers to an action as its result: ``{"message", "replies"}``.

    Raises :class:`Refused` when no worker answered (404) or every one refused (409):
    an action reports what the workers did, never what was asked of them.
    """
    answers: dict[str, Any] = {}
    for reply in replies:
        answers.update(reply)
    if not answers:
        if asked:
            raise Refused(
                f"{', '.join(asked)} did not answer within {ACTION_TIMEOUT:g} s: is it running?",
                404,
            )
        raise Refused(f"no worker answered within {ACTION_TIMEOUT:g} s: is any running?", 404)
    lines, refused = [], 0
    for host, value in sorted(answers.items()):
        if isinstance(value, dict) and "error" in value:
            refused += 1
            lines.append(f"{host} refused: {value['error']}")
        else:
            said = value.get("ok", value) if isinstance(value, dict) else value
            lines.append(f"{host}: {said}")
    message = "; ".join(lines)
    if refused == len(answers):
        raise Refused(message)
    return {"message": message, "replies": answers}


def _rate_limit(board: Dashboard, params: dict[str, Any]) -> dict[str, Any]:
    rate = params.get("ratelimit", params.get("rate_limit")) or None
    asked = _destination(params)
    try:
        replies = board.app.control.rate_limit(
            params["name"], rate, asked, reply=True, timeout=ACTION_TIMEOUT
        )
    except ConfigurationError as exc:  # a rate such as "banana"
        raise ValueError(str(exc)) from None
    return answered(replies, asked)


def _timeout(board: Dashboard, params: dict[str, Any]) -> dict[str, Any]:
    soft, hard = cluster.float_arg(params.get("soft")), cluster.float_arg(params.get("hard"))
    asked = _destination(params)
    replies = board.app.control.time_limit(
        params["name"], soft, hard, asked, reply=True, timeout=ACTION_TIMEOUT
    )
    return answered(replies, asked)


def _shutdown(board: Dashboard, params: dict[str, Any]) -> dict[str, Any]:
    asked = [params["worker"]]
    return answered(board.app.control.shutdown(asked, reply=True, timeout=ACTION_TIMEOUT), asked)


def _forget(board: Dashboard, params: dict[str, Any]) -> dict[str, Any]:
    """Forget an offline worker: its row in the history and its presence in the broker."""
    name = str(params["worker"])
    found = next((w for w in workers(board.store) if w["hostname"] == name), None)
    if found is not None and found["alive"]:
        raise Refused(f"{name} is online: shut it down before forgetting it")
    try:
        presence = forget_presence(board.app.broker, name)
    except ValueError as exc:  # its heartbeat says online though the history does not
        raise Refused(str(exc)) from None
    except CapabilityUnavailable:  # no presence on this broker: the history is all
        presence = False
    stored = board.store.forget_worker(name)
    if not (stored or presence):
        raise LookupError(f"no worker {name} known")
    return {"message": f"Forgot {name}"}


def _pool(grow: bool) -> Action:
    def change(board: Dashboard, params: dict[str, Any]) -> dict[str, Any]:
        n = cluster.int_arg(params.get("n"), 1)
        control, asked = board.app.control, [params["worker"]]
        replies = (control.pool_grow if grow else control.pool_shrink)(
            n, asked, reply=True, timeout=ACTION_TIMEOUT
        )
        return answered(replies, asked)

    return change


def _consumer(add: bool) -> Action:
    def change(board: Dashboard, params: dict[str, Any]) -> dict[str, Any]:
        queue = str(params.get("queue") or "")
        if not queue:
            raise ValueError("give a queue")
        control, asked = board.app.control, [params["worker"]]
        replies = (control.add_consumer if add else control.cancel_consumer)(
            queue, asked, reply=True, timeout=ACTION_TIMEOUT
        )
        return answered(replies, asked)

    return change


def _queue_action(kind: str) -> Action:
    def act(board: Dashboard, params: dict[str, Any]) -> dict[str, Any]:
        queue, app = params["queue"], board.app
        ids = [i for i in str(params.get("ids") or "").split(",") if i] or None
        if kind == "pause":
            app.control.pause(queue, by="dashboard")
            return {"message": f"Paused {queue}"}
        if kind == "resume":
            app.control.resume(queue)
            return {"message": f"Resumed {queue}"}
        if kind == "remove":
            try:
                remove_queue(app, queue)
            except ValueError as exc:
                raise Refused(str(exc)) from None
            return {"message": f"Removed {queue} from the list"}
        if kind == "purge":
            purged = counted(app.broker.purge(queue), "message")
            return {"message": f"Purged {purged} from {queue}"}
        if kind == "requeue-dead":
            requeued = counted(app.broker.requeue_dead(queue, ids), "dead letter")
            return {"message": f"Requeued {requeued}"}
        return {"message": f"Deleted {counted(app.broker.purge_dead(queue, ids), 'dead letter')}"}

    return act


def _message_action(kind: MessageAction) -> Action:
    """Delete, run now or requeue single messages of a queue (``ids``: task ids)."""

    def act(board: Dashboard, params: dict[str, Any]) -> dict[str, Any]:
        queue = str(params["queue"])
        ids = [i for i in str(params.get("ids") or "").split(",") if i]
        if not ids:
            raise ValueError("give the ids of the messages")
        done = act_on_messages(board.app, kind, queue, ids, str(params.get("kind") or "waiting"))
        verb = {
            "delete": "Deleted",
            "run-now": "Moved to the queue, due now,",
            "requeue": "Requeued",
        }
        if not done:
            raise LookupError(f"none of {', '.join(ids)} is there (any more) in {queue}")
        return {"message": f"{verb[kind]} {counted(done, 'message')} of {queue}", "count": done}

    return act


def action(function: Action) -> Callable[[Request], Any]:
    """A POST endpoint around a blocking action: access checks, errors as 400/404."""

    async def endpoint(request: Request) -> Response:
        params = await action_params(request)
        refusal = refused(request, params)
        if refusal is not None:
            return refusal
        try:
            body = await blocking(function, dashboard(request), params)
        except LookupError as exc:
            return done(params, {"error": str(exc)}, 404)
        except BulkConflict as exc:
            return done(params, {"error": str(exc)}, 409)
        except Refused as exc:
            return done(params, {"error": str(exc)}, exc.status)
        except CapabilityUnavailable as exc:
            return done(params, {"error": str(exc)}, 409)
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            return done(params, {"error": str(exc)}, 400)
        dashboard(request).inspector.forget()  # the next view asks the workers afresh
        return done(params, body)

    return endpoint


async def api_schedules(request: Request) -> Response:
    return _JSON(await blocking(schedule_rows, dashboard(request)))


def _post(path: str, function: Action) -> Route:
    return Route(path, action(function), methods=["POST"])


ROUTES = [
    Route("/healthcheck", healthcheck),
    Route("/api/workers", api_workers),
    Route("/api/worker/{worker}", api_worker),
    Route("/api/tasks", api_tasks),
    Route("/api/tasks/bulk/{action}", api_bulk_count, methods=["GET"]),
    _post("/api/tasks/bulk/{action}", _bulk),
    Route("/api/task/types", api_task_types),
    Route("/api/task/info/{task_id}", api_task_info),
    Route("/api/task/result/{task_id}", api_task_result),
    Route("/api/queues/length", api_queue_lengths),
    Route("/api/queues", api_queues),
    Route("/api/queue/{queue}/dead-letters", api_dead_letters),
    Route("/api/queue/{queue}/messages", api_queue_messages),
    Route("/api/overview", api_overview),
    _post("/api/task/async-apply/{name}", _apply),
    _post("/api/task/send-task/{name}", _apply),
    _post("/api/task/revoke/{task_id}", _revoke),
    _post("/api/task/retry/{task_id}", _retry),
    _post("/api/task/rate-limit/{name}", _rate_limit),
    _post("/api/task/timeout/{name}", _timeout),
    _post("/api/worker/shutdown/{worker}", _shutdown),
    _post("/api/worker/forget/{worker}", _forget),
    _post("/api/worker/pool/grow/{worker}", _pool(grow=True)),
    _post("/api/worker/pool/shrink/{worker}", _pool(grow=False)),
    _post("/api/worker/queue/add-consumer/{worker}", _consumer(add=True)),
    _post("/api/worker/queue/cancel-consumer/{worker}", _consumer(add=False)),
    *[
        _post(f"/api/queue/{{queue}}/messages/{kind}", _message_action(kind))
        for kind in get_args(MessageAction)
    ],
    *[
        _post(f"/api/queue/{kind}/{{queue}}", _queue_action(kind))
        for kind in ("pause", "resume", "purge", "requeue-dead", "purge-dead", "remove")
    ],
    Route("/api/schedules", api_schedules),
    *[_post(f"/api/schedule/{kind}/{{name}}", schedule_action(kind)) for kind in SCHEDULE_ACTIONS],
]
