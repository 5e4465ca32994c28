"""The application object: settings, task registry, and connections."""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Literal, ParamSpec, TypeVar, overload

from .backends import Backend, connect_backend, default_backend_url
from .brokers import Broker, connect_broker
from .brokers.capabilities import require
from .config import Settings, settings_from_object
from .control import Control
from .current import current_app, set_current_app, shared_task, shared_tasks, use_default_app
from .events.dispatcher import close_dispatcher
from .exceptions import NotRegistered
from .integration import Integration, default_integration, registered_integration
from .message import Message
from .middleware import default_middleware
from .middleware.base import Middleware, MiddlewareStack
from .pid import this_pid
from .publisher import SharedPublisher
from .result import AsyncResult as _AsyncResult
from .result import GroupResult as _GroupResult
from .routing import Router
from .serialization import Codec
from .task import AsyncTask, BoundTaskDecorator, Task, TaskDecorator, task_class
from .urls import redact

logger = logging.getLogger("celeriac")

P = ParamSpec("P")
R = TypeVar("R")
EMBEDDED_BROKER_URL = "sqlite:///celeriac.sqlite3"


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
        self.tasks: dict[str, Task[Any, Any]] = {}
        self._local = _Connections()
        self._publisher = SharedPublisher()
        self._router: Router | None = None
        self._codec: Codec | None = None
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

    def _settings_changed(self, names: set[str]) -> None:
        if names & {"task_routes", "task_queues", "task_default_queue", "task_default_priority"}:
            self._router = None
        if names & {"task_serializer", "accept_content", "security_key"}:
            self._codec = None
        connections = {"broker_url", "broker_capabilities_url", "broker_transport_options"}
        if names & (connections | {"result_backend", "result_expires"}):
            self._local = _Connections()

    @property
    def router(self) -> Router:
        if self._router is None:
            self._router = Router(self.conf)
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
    def task(self, fun: Callable[P, R], /) -> Task[P, R]: ...
    @overload
    def task(self, /, *, bind: Literal[True], **options: Any) -> BoundTaskDecorator: ...
    @overload
    def task(self, /, *, bind: Literal[False] = False, **options: Any) -> TaskDecorator: ...
    @overload
    def task(self, fun: Callable[..., Any], /, **options: Any) -> Task[..., Any]: ...
    def task(self, fun: Any = None, /, **options: Any) -> Any:
        """Register a function as a task: ``@app.task`` or ``@app.task(queue="q")``.

        The task keeps the function's parameters and return type for type checkers
        (with ``bind=True``, all but the first, ``self``); see docs/typing.md.
        """
        if fun is not None and callable(fun):
            return self._register(fun, options)
        return lambda f: self._register(f, options)

    def _register(self, fun: Callable[..., Any], options: dict[str, Any]) -> Task[Any, Any]:
        task: Task[Any, Any] = task_class(fun)(self, fun, **options)
        self.tasks[task.name] = task
        return task

    def get_task(self, name: str) -> Task[Any, Any]:
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

    def sendable_task(self, name: str) -> Task[Any, Any]:
        """The registered task ``name``, or a stand-in that can send it by name (not run it)."""
        return self.tasks.get(name) or Task(self, _unknown_task, name=name, typing=False)

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
        codec = self.codec
        self._publisher.publish(self.broker, [m.envelope(codec) for m in messages])
        for after in self.middleware.after_enqueue:
            for message in messages:
                after(self, message)

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
