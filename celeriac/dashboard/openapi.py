"""``GET /api/openapi.json``: the API described in OpenAPI 3.1, for clients and tools.

Every JSON route of :mod:`.api` is listed here with its parameters; a test checks
that the two agree. Under a path prefix (a mounted dashboard) the schema's
server URL is that prefix.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .bulk import BATCH_SIZE, BULK_ACTIONS, BULK_LIMIT

JSON_OBJECT = {"type": "object", "additionalProperties": True}


def _param(name: str, where: str, text: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": text,
        "schema": {"type": kind, **extra},
    }


def _path(name: str, text: str) -> dict[str, Any]:
    return _param(name, "path", text)


FILTER = [
    _param("state", "query", "PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED..."),
    _param("taskname", "query", "task name (also `name`)"),
    _param("workername", "query", "worker hostname (also `worker`)"),
    _param("queue", "query", "queue name"),
    _param("search", "query", "substring of name, args, kwargs, result, exception; or a task id"),
    _param("since", "query", "first seen at or after: Unix time, ISO 8601, or 15m/1h/24h/7d"),
    _param("until", "query", "first seen before: Unix time, ISO 8601, or a duration back"),
]
PAGE = [
    _param("limit", "query", "tasks per page (at most 1000)", "integer", default=50),
    _param("offset", "query", "tasks to skip, newest first", "integer", default=0),
]
BULK = [
    _param("expected", "query", "the count the dry run returned (required to act)", "integer"),
    _param("snapshot", "query", "the dry run's snapshot: tasks first seen later are left out",
           "number"),
    _param("dry_run", "query", "count only, as GET does", "boolean"),
]  # fmt: skip
ACTION_ERRORS = {
    "400": {"description": "a parameter is wrong; the error says which"},
    "401": {"description": "authentication required"},
    "403": {"description": "read-only dashboard, or a browser POST without the CSRF token"},
    "404": {"description": "unknown task, worker or action"},
}


def _reply(text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": JSON_OBJECT}}}


def _get(summary: str, *params: dict[str, Any], tag: str = "read") -> dict[str, Any]:
    return {"get": {"summary": summary, "tags": [tag], "parameters": list(params),
                    "responses": {"200": _reply(summary)}}}  # fmt: skip


def _post(summary: str, *params: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
    responses = {"200": _reply(summary), **ACTION_ERRORS, **(extra or {})}
    body = {"content": {"application/json": {"schema": JSON_OBJECT},
                        "application/x-www-form-urlencoded": {"schema": JSON_OBJECT}}}  # fmt: skip
    operation = {"summary": summary, "tags": ["action"], "parameters": list(params),
                 "requestBody": {"required": False, **body}, "responses": responses}  # fmt: skip
    return {"post": operation}


TASK_ID = _path("task_id", "task id")
WORKER = _path("worker", "worker hostname")
NAME = _path("name", "task name")
QUEUE = _path("queue", "queue name")
ENTRY = _path("name", "periodic task (beat_schedule entry) name")
BULK_ACTION = {
    **_path("action", "what to do to every match"),
    "schema": {"type": "string", "enum": list(BULK_ACTIONS)},
}
BULK_TEXT = (
    f"every task the filter matches, in batches of {BATCH_SIZE:,}; at most {BULK_LIMIT:,} "
    "tasks; refused (409) when the filter now matches more than `expected`"
)

IDS = _param("ids", "query", "task ids, comma-separated")

PATHS: dict[str, dict[str, Any]] = {
    "/api/workers": _get("workers from their heartbeats, by hostname"),
    "/api/worker/{worker}": _get("a worker's inspect replies (cached ~3 s)", WORKER),
    "/api/tasks": _get("tasks, newest first, by id (Flower's shape)", *FILTER, *PAGE),
    "/api/tasks/bulk/{action}": {
        **_get(
            "dry run: how many tasks the filter matches, and the snapshot",
            BULK_ACTION,
            *FILTER,
            tag="action",
        ),
        **_post(
            BULK_TEXT,
            BULK_ACTION,
            *FILTER,
            *BULK,
            extra={"409": {"description": "more matches than `expected`: count again"}},
        ),
    },
    "/api/task/types": _get("every task name seen"),
    "/api/task/info/{task_id}": _get("one task with its timeline", TASK_ID),
    "/api/task/result/{task_id}": _get("state and result from the result backend", TASK_ID),
    "/api/queues/length": _get("messages waiting per queue (Flower's shape)"),
    "/api/queues": _get("every queue: waiting per priority, delayed, in flight, dead"),
    "/api/queue/{queue}/dead-letters": _get("the oldest dead letters of a queue", QUEUE),
    "/api/queue/{queue}/messages": _get(
        "a page of a queue's waiting (in the order workers take them), delayed (soonest "
        "first) or reserved messages, with how many there are (on RabbitMQ, reserved ones "
        "as the live workers report them); 400 for a RabbitMQ page beyond 500 messages",
        QUEUE,
        _param("kind", "query", "waiting (default), delayed or reserved"),
        _param("limit", "query", "1 to 500, default 50", "integer"),
        _param("offset", "query", "skip this many", "integer"),
        _param("newest", "query", "newest (or latest due) first", "boolean"),
    ),
    "/api/queue/{queue}/messages/delete": _post(
        "delete waiting (or kind=delayed) messages; kind=reserved on RabbitMQ revokes them",
        QUEUE,
        IDS,
        _param("kind", "query", "waiting (default), delayed or reserved"),
    ),
    "/api/queue/{queue}/messages/run-now": _post(
        "move delayed messages to the back of their queue, due now", QUEUE, IDS
    ),
    "/api/queue/{queue}/messages/requeue": _post(
        "take reserved messages back from the worker holding them (on RabbitMQ, the worker "
        "gives them back)",
        QUEUE,
        IDS,
    ),
    "/api/overview": _get("the last hour: throughput, failure rate, runtime percentiles"),
    "/api/task/async-apply/{name}": _post("send a task (args, kwargs, queue, countdown)", NAME),
    "/api/task/send-task/{name}": _post("send a task by name (as async-apply)", NAME),
    "/api/task/revoke/{task_id}": _post(
        "revoke a task", TASK_ID, _param("terminate", "query", "stop it if running", "boolean")
    ),
    "/api/task/retry/{task_id}": _post("send a stored task again with its arguments", TASK_ID),
    "/api/task/rate-limit/{name}": _post(
        "set a task's rate limit", NAME, _param("ratelimit", "query", "e.g. 10/m; empty: none")
    ),
    "/api/task/timeout/{name}": _post(
        "set a task's time limits",
        NAME,
        _param("soft", "query", "seconds", "number"),
        _param("hard", "query", "seconds", "number"),
    ),
    "/api/worker/shutdown/{worker}": _post("shut a worker down", WORKER),
    "/api/worker/forget/{worker}": _post(
        "forget an offline worker (409 while it is online)", WORKER
    ),
    "/api/worker/pool/grow/{worker}": _post(
        "grow a worker's pool", WORKER, _param("n", "query", "processes", "integer")
    ),
    "/api/worker/pool/shrink/{worker}": _post(
        "shrink a worker's pool", WORKER, _param("n", "query", "processes", "integer")
    ),
    "/api/worker/queue/add-consumer/{worker}": _post(
        "consume a queue", WORKER, _param("queue", "query", "queue name")
    ),
    "/api/worker/queue/cancel-consumer/{worker}": _post(
        "stop consuming a queue", WORKER, _param("queue", "query", "queue name")
    ),
    "/api/queue/pause/{queue}": _post("pause a queue", QUEUE),
    "/api/queue/resume/{queue}": _post("resume a queue", QUEUE),
    "/api/queue/purge/{queue}": _post("delete the messages waiting in a queue", QUEUE),
    "/api/queue/remove/{queue}": _post(
        "stop listing an empty queue no worker consumes (409 otherwise, with why)", QUEUE
    ),
    "/api/queue/requeue-dead/{queue}": _post(
        "requeue dead letters", QUEUE, _param("ids", "query", "ids, comma-separated; none: all")
    ),
    "/api/queue/purge-dead/{queue}": _post(
        "delete dead letters", QUEUE, _param("ids", "query", "ids, comma-separated; none: all")
    ),
    "/api/schedules": _get("periodic tasks: schedule, last and next run, last outcome, leader"),
    "/api/schedule/pause/{name}": _post("pause a periodic task", ENTRY),
    "/api/schedule/resume/{name}": _post("resume a periodic task", ENTRY),
    "/api/schedule/run/{name}": _post("send one run of a periodic task now", ENTRY),
}


def schema(prefix: str = "") -> dict[str, Any]:
    """The OpenAPI document; ``prefix``: the path the dashboard is mounted under."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "celeriac dashboard",
            "version": "1",
            "description": "Flower's paths and shapes, and the dashboard's own. Actions are "
            "POSTs: parameters in the query string, a form or a JSON body.",
        },
        "servers": [{"url": prefix or "/"}],
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "token": {"type": "apiKey", "in": "header", "name": "X-API-Token"},
            }
        },
        "security": [{}, {"basic": []}, {"bearer": []}, {"token": []}],
        "paths": PATHS,
    }


async def openapi_schema(request: Request) -> Response:
    return JSONResponse(schema(request.scope.get("root_path", "")))


ROUTES = [Route("/api/openapi.json", openapi_schema)]
