"""The application object: settings, task registry, and connections."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Literal, ParamSpec, TypeVar, overload

from .backends import (
    REPLY_TO,
    Backend,
    check_backend_with_broker,
    connect_backend,
    default_backend_url,
    replies_to_sender,
)
from .brokers import Broker, broker_class, connect_broker
from .brokers.capabilities import require
from .config import Settings, settings_from_object
from .control import Control
from .current import current_app, set_current_app, shared_task, shared_tasks, use_default_app
from .events.dispatcher import close_dispatcher
from .exceptions import ConfigurationError, NotRegistered
from .integration import Integration, default_integration, registered_integration
from .message import Message
from .middleware import default_middleware
from .middleware.base import Middleware, MiddlewareStack
from .pid import this_pid
from .publisher import SharedPublisher
from .request import current_request
from .result import AsyncResult as _AsyncResult
from .result import GroupResult as _GroupResult
from .routing import Router
from .serialization import Codec
from .signals import Signal
from .task import AsyncTask, BoundTaskDecorator, TaskDecorator, task_class
from .task import Task as _Task
from .urls import load_object, redact

logger = logging.getLogger("celeriac")

P = ParamSpec("P")
R = TypeVar("R")
EMBEDDED_BROKER_URL = "sqlite:///celeriac.sqlite3"
#: The command line, named by dotted path: the core does not import it.
_START_APP = "celeriac.cli.main:start_app"


class Celeriac:
    """A celeriac application: ``Celeriac("proj", broker=..., backend=..., **settings)``."""

    def __init__(
        self,
        main: str | None = None,
        broker: str | None = None,
        backend: str | None = None,
        include: Sequence[str] | None = None,
        set_as_current: bool = True,
        middleware: Iterable[Middleware] | None = None,
        **settings: Any,
    ) -> None:
        self.main = main
        self.tasks: dict[str, _Task[Any, Any]] = {}
        self._local = _Connections()
        self._publisher = SharedPublisher()
        self._router: Router | None = None
        self._codec: Codec | None = None
        #: Celery's app signals, sent with ``sender=app``: ``on_after_configure`` (with
        #: ``source=app.conf``) then ``on_after_finalize``, each once, by :meth:`finalize`.
        self.on_after_configure = Signal("app.on_after_configure")
        self.on_after_finalize = Signal("app.on_after_finalize")
        self.finalized = False
        self.conf = Settings(on_change=self._settings_changed)
        if broker is not None:
            settings["broker_url"] = broker
        if backend is not None:
            settings["result_backend"] = backend
        if include is not None:
            settings["include"] = include
        self.conf.update(settings)
        self.conf.apply_environment()
        if middleware is None:
            middleware = default_middleware()
        self.middleware = MiddlewareStack(middleware)
        self._deferred: list[Callable[[], None]] = []  # run by import_modules()
        for fun, options in shared_tasks():
            self._register(fun, options)
        if set_as_current:
            self.set_current()

    def __repr__(self) -> str:
        return f"<Celeriac {self.main or '__main__'}>"

    def set_current(self) -> None:
        """Make this the app of results, signatures and shared tasks made without one."""
        set_current_app(self)

    # -- configuration ---------------------------------------------------------
    def config_from_object(self, obj: Any, namespace: str | None = None) -> None:
        """Load settings from a module, object, dict, or ``"module:attr"``."""
        self.conf.update(settings_from_object(obj, namespace))
        self.conf.apply_environment()

    def config_from_envvar(self, variable_name: str, silent: bool = False) -> bool:
        """Load settings from the module the environment variable names (Celery's call)."""
        module = os.environ.get(variable_name)
        if not module:
            if silent:
                return False
            raise ConfigurationError(
                f"the environment variable {variable_name} is not set: set it to the module "
                "that holds your settings (e.g. proj.celeriacconfig)"
            )
        self.config_from_object(module)
        return True

    def finalize(self) -> None:
        """Send ``on_after_configure`` then ``on_after_finalize``, once each.

        Workers, beat and every ``celeriac`` command call this after importing the
        task modules (:meth:`import_modules`), so receivers connected at import time
        run there, as in Celery (``add_periodic_task`` belongs in one).
        """
        if self.finalized:
            return
        self.finalized = True
        check_backend_with_broker(self.conf.result_backend, self.conf.broker_url)
        self.router  # noqa: B018 - routes are checked now, before anything is sent
        self.on_after_configure.send(sender=self, source=self.conf)
        self.on_after_finalize.send(sender=self)

    def _settings_changed(self, names: set[str]) -> None:
        if names & {"task_routes", "task_queues", "task_default_queue", "task_default_priority"}:
            self._router = None
        if names & {"task_serializer", "accept_content", "security_key"}:
            self._codec = None
        connections = {"broker_url", "broker_capabilities_url", "broker_transport_options"}
        if names & (connections | {"result_backend", "result_expires"}):
            self._local = _Connections()
            self._replies_to_sender: bool | None = None
        if names & {"result_backend", "broker_url"} and self.conf.broker_url:
            check_backend_with_broker(self.conf.result_backend, self.conf.broker_url)

    def _routes_by_exchange(self) -> bool:
        return broker_class(self.broker_url).routes_by_exchange

    @property
    def router(self) -> Router:
        if self._router is None:
            self._router = Router(self.conf, self._routes_by_exchange)
        return self._router

    @property
    def codec(self) -> Codec:
        if self._codec is None:
            self._codec = Codec(
                self.conf.task_serializer, self.conf.accept_content, self.conf.security_key
            )
        return self._codec

    @property
    def broker_url(self) -> str:
        return self.conf.broker_url or EMBEDDED_BROKER_URL

    @property
    def backend_url(self) -> str:
        if self.conf.result_backend:
            return self.conf.result_backend  # type: ignore[no-any-return]
        return default_backend_url(self.broker_url)

    def describe(self) -> str:
        """Broker and backend, passwords removed, for logs and banners."""
        embedded = "" if self.conf.broker_url else " (embedded: no broker_url configured)"
        return f"broker {redact(self.broker_url)}{embedded}, results {redact(self.backend_url)}"

    # -- connections: one per thread, new after fork ---------------------------
    def _connections(self) -> _Connections:
        local = self._local
        pid = this_pid()
        if local.pid != pid:
            local.pid = pid
            local.broker = None
            local.backend = None
        return local

    @property
    def broker(self) -> Broker:
        """This thread's broker connection."""
        local = self._connections()
        if local.broker is None:
            local.broker = self.connect_broker()
        return local.broker

    @property
    def backend(self) -> Backend:
        """This thread's result backend connection."""
        local = self._connections()
        if local.backend is None:
            local.backend = self.connect_backend()
        return local.backend

    def connect_broker(self) -> Broker:
        """A new broker connection of this app's own."""
        return connect_broker(self.broker_url, self.conf)

    def connect_backend(self) -> Backend:
        """A new result backend connection of this app's own."""
        return connect_backend(self.backend_url, self.conf, self.codec)

    # -- tasks -----------------------------------------------------------------
    @overload
    def task(self, fun: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...
    @overload
    def task(self, fun: Callable[P, R], /) -> _Task[P, R]: ...
    @overload
    def task(self, /, *, bind: Literal[True], **options: Any) -> BoundTaskDecorator: ...
    @overload
    def task(self, /, *, bind: Literal[False] = False, **options: Any) -> TaskDecorator: ...
    @overload
    def task(self, fun: Callable[..., Any], /, **options: Any) -> _Task[..., Any]: ...
    def task(self, fun: Any = None, /, **options: Any) -> Any:
        """Register a function as a task: ``@app.task`` or ``@app.task(queue="q")``.

        The task keeps the function's parameters and return type for type checkers
        (with ``bind=True``, all but the first, ``self``); see docs/typing.md.
        """
        if fun is not None and callable(fun):
            return self._register(fun, options)
        return lambda f: self._register(f, options)

    def _register(self, fun: Callable[..., Any], options: dict[str, Any]) -> _Task[Any, Any]:
        base = options.pop("base", None) or task_class(fun)
        if not (isinstance(base, type) and issubclass(base, _Task)):
            raise ConfigurationError(
                f"base={base!r} on {fun.__qualname__}: a task's base must be a subclass of "
                "celeriac.Task (or of app.Task)"
            )
        task: _Task[Any, Any] = base(self, fun, **options)
        self.tasks[task.name] = task
        return task

    @property
    def Task(self) -> type[_Task[Any, Any]]:
        """This app's task class: subclass it for class-based tasks and task bases
        (``class MyTask(app.Task): ...``); its instances belong to this app."""
        bound: type[_Task[Any, Any]] | None = self.__dict__.get("_task_class")
        if bound is None:
            bound = type("Task", (_Task,), {"_bound_app": self, "__module__": _Task.__module__})
            self.__dict__["_task_class"] = bound
        return bound

    def register_task(self, task: _Task[Any, Any] | type[_Task[Any, Any]]) -> _Task[Any, Any]:
        """Register a class-based task (an instance, or its class) with this app."""
        if isinstance(task, type):
            task = task(self)
        if not isinstance(task, _Task):
            raise ConfigurationError(
                f"register_task() takes a celeriac.Task (class-based task), not {task!r}: "
                "decorate a function with @app.task instead"
            )
        task.app = self
        self.tasks[task.name] = task
        return task

    def get_task(self, name: str) -> _Task[Any, Any]:
        try:
            return self.tasks[name]
        except KeyError:
            raise NotRegistered(
                f"task {name!r} is not registered with this app: check the worker imports the "
                "module that defines it (imports/include settings, autodiscover_tasks)"
            ) from None

    def send_task(
        self,
        name: str,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> _AsyncResult[Any]:
        """Send a task by name, without importing its code."""
        return self.sendable_task(name).apply_async(args, kwargs, **options)

    def add_periodic_task(
        self,
        schedule: Any,
        sig: Any,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        name: str | None = None,
        **opts: Any,
    ) -> str:
        """Add an entry to ``beat_schedule``, as Celery does: ``schedule`` in seconds, a
        timedelta or ``crontab(...)``, ``sig`` a signature (``say.s("hello")``); the
        entry's name (``name``, else the signature's text) is returned."""
        task = getattr(sig, "task", None)
        if not isinstance(task, str):
            raise TypeError(f"add_periodic_task needs a signature such as say.s('hi'), not {sig!r}")
        call_args = (*getattr(sig, "args", ()), *args)
        call_kwargs = {**getattr(sig, "kwargs", {}), **(kwargs or {})}
        shown = [*map(repr, call_args), *(f"{k}={v!r}" for k, v in call_kwargs.items())]
        key = name or f"{task}({', '.join(shown)})"
        options = {**getattr(sig, "options", {}), **opts}
        catch_up = options.pop("catch_up", "once")
        self.conf.beat_schedule[key] = {
            "task": task,
            "schedule": schedule,
            "args": call_args,
            "kwargs": call_kwargs,
            "options": options,
            "catch_up": catch_up,
        }
        return key

    def sendable_task(self, name: str) -> _Task[Any, Any]:
        """The registered task ``name``, or a stand-in that can send it by name (not run it)."""
        return self.tasks.get(name) or _Task(self, _unknown_task, name=name, typing=False)

    def AsyncResult(self, task_id: str, task_name: str | None = None) -> _AsyncResult[Any]:
        return _AsyncResult(task_id, self, task_name)

    def GroupResult(self, group_id: str, results: Sequence[_AsyncResult[Any]]) -> Any:
        return _GroupResult(group_id, results, self)

    # -- sending ---------------------------------------------------------------
    def publish(self, messages: Sequence[Message]) -> None:
        """Send messages through the middleware to the broker, in one batch."""
        before = self.middleware.before_enqueue
        if before:
            changed = []
            for message in messages:
                for hook in before:
                    message = hook(self, message)
                changed.append(message)
            messages = changed
        current = current_request()
        if current is not None and current.id is not None:  # sent by a running task
            current.children.extend(m.id for m in messages if m.parent_id == current.id)
        if self.replies_to_sender:
            messages = self._with_reply_to(messages, current)
        codec, broker = self.codec, self.broker
        apart = broker.keeps_sent_at
        envelopes = [m.envelope(codec, apart) for m in messages]
        if broker.publishes_concurrently:
            broker.publish(envelopes)
        else:
            self._publisher.publish(broker, envelopes)
        for after in self.middleware.after_enqueue:
            for message in messages:
                after(self, message)

    @property
    def replies_to_sender(self) -> bool:
        """Whether results go back to the sending client (``rpc://``), so each message
        names the client's reply queue (known without connecting)."""
        replies = self.__dict__.get("_replies_to_sender")
        if replies is None:
            replies = self._replies_to_sender = replies_to_sender(self.backend_url)
        return replies

    def _with_reply_to(self, messages: Sequence[Message], current: Any) -> list[Message]:
        """Messages naming where their results go: the reply queue of the task being run
        here (a workflow's next step goes back to the client that started it), else ours."""
        inherited = current.headers.get(REPLY_TO) if current is not None else None
        reply_to = inherited or self.backend.reply_to
        return [
            m if REPLY_TO in m.headers else m.replace(headers={**m.headers, REPLY_TO: reply_to})
            for m in messages
        ]

    def revoke(
        self, task_ids: Sequence[str], terminate: bool = False, signal: str = "SIGTERM"
    ) -> None:
        """Revoke tasks in the broker (durable, with ``task_revoke_ttl``)."""
        broker = self.broker
        revocations = require(broker, broker.revocations, "revocations", "revoking tasks")
        revocations.revoke(list(task_ids), float(self.conf.task_revoke_ttl))
        hook = getattr(self, "on_revoke", None)
        if hook is not None:  # remote control broadcasts terminate requests
            hook(task_ids, terminate, signal)

    # -- remote control ------------------------------------------------------------
    @property
    def control(self) -> Control:
        """Remote control of the workers: ``app.control.ping()``, ``.inspect().active()``..."""
        control: Control | None = self.__dict__.get("_control")
        if control is None:
            control = self.__dict__["_control"] = Control(self)
        return control

    def on_revoke(self, task_ids: Sequence[str], terminate: bool, signal: str) -> None:
        """Tell running workers (they skip it if prefetched, stop it with ``terminate``)."""
        self.control.on_revoke(task_ids, terminate, signal)

    # -- discovery -------------------------------------------------------------
    @property
    def integration(self) -> Integration | None:
        """The web framework integration loaded in this process (Django's), if any."""
        return registered_integration()

    def defer_until_import(self, step: Callable[[], None]) -> None:
        """Run ``step`` at the next ``import_modules()`` (a worker calls it as it starts)."""
        self._deferred.append(step)

    def import_modules(self) -> None:
        """Run deferred discovery, then import the modules named by ``imports`` and ``include``."""
        while self._deferred:
            self._deferred.pop(0)()
        for name in (*self.conf.imports, *self.conf.include):
            importlib.import_module(name)
        self.finalize()

    def autodiscover_tasks(
        self,
        packages: Iterable[str] | Callable[[], Iterable[str]] | None = None,
        related_name: str = "tasks",
    ) -> list[str]:
        """Import ``<package>.tasks`` for each package (default: Django's INSTALLED_APPS).

        With no packages, Django's installed apps are searched once Django has
        loaded them (see ``celeriac.contrib.django``, which :mod:`celeriac.integration`
        loads by name for this call); until then this returns ``[]``.
        """
        if packages is None:
            return default_integration().discover_tasks(self, related_name)
        names = list(packages() if callable(packages) else packages)
        found = []
        for package in names:
            module = f"{package}.{related_name}"
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name not in (module, package):
                    raise
                continue
            found.append(module)
        return found

    # -- the command line --------------------------------------------------------------
    def start(self, argv: Sequence[str] | None = None) -> None:
        """Run a ``celeriac`` command with this app: ``python proj.py worker -l INFO``.

        ``argv`` defaults to the program's arguments (``sys.argv`` after the script).
        """
        if argv is None:
            argv = sys.argv[1:]
        load_object(_START_APP)(self, list(argv))

    def worker_main(self, argv: Sequence[str] | None = None) -> None:
        """Run a worker with this app: ``app.worker_main(["worker", "-l", "INFO"])``."""
        args = list(sys.argv[1:] if argv is None else argv)
        if "worker" not in args:
            raise ConfigurationError(
                f"worker_main({args!r}): the arguments must include the worker command, "
                "e.g. ['worker', '--loglevel=INFO']; use app.start() for other commands"
            )
        self.start(args)

    def close(self) -> None:
        """Close this thread's broker and backend connections, and stop the events
        thread after it sent what it holds (it starts again on the next event)."""
        close_dispatcher(self)
        local = self._connections()
        if local.broker is not None:
            local.broker.close()
            local.broker = None
        if local.backend is not None:
            local.backend.close()
            local.backend = None


class _Connections(threading.local):
    """One thread's broker and backend connections, made in process ``pid``."""

    pid: int | None = None
    broker: Broker | None = None
    backend: Backend | None = None


def _unknown_task(*args: Any, **kwargs: Any) -> Any:
    raise NotRegistered("this task is not registered in this process")


use_default_app(lambda: Celeriac("default"))

__all__ = ["EMBEDDED_BROKER_URL", "Celeriac", "current_app", "shared_task"]
