"""Tasks: ``@app.task``, ``shared_task``, and how a call becomes a message."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import datetime, timezone
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Concatenate,
    Generic,
    ParamSpec,
    Protocol,
    TypeVar,
    overload,
)

from . import states
from .canvas import Signature, chunks, xmap, xstarmap
from .canvas.eager import run_linked
from .current import current_app
from .exceptions import (
    ConfigurationError,
    ExceptionInfo,
    MaxRetriesExceededError,
    Retry,
    TaskError,
)
from .ids import new_id
from .message import Message, check_priority
from .progress import report_progress
from .rate import parse_rate
from .request import Request, current_request
from .unique import DEBOUNCE_HEADER, claim, debounce_delay, release, store_key, take_over, window
from .unique import HEADER as UNIQUE_HEADER
from .urls import load_object
from .worker.eager import run_eagerly

if TYPE_CHECKING:
    from .app import Celeriac
    from .result import AsyncResult, EagerResult

P = ParamSpec("P")
R = TypeVar("R")
_P = ParamSpec("_P")  # a task's parameters after the first (the parent's result in a chain)

#: The options ``@app.task(...)`` accepts, with Celery's names and defaults.
TASK_OPTIONS: dict[str, Any] = {
    "name": None,
    "queue": None,
    "priority": None,
    "rate_limit": None,
    "rate_limit_key": None,
    "concurrency_limit": None,  # at most this many running at once, cluster-wide
    "concurrency_key": None,  # one limit per key: an argument's name or a callable
    "unique": None,  # what makes a send unique: True, an argument's name or a callable
    "unique_for": None,  # the window in seconds; None: until the task finishes
    "debounce": None,  # seconds: of sends of one unique key, the last runs, this much later
    "time_limit": None,
    "soft_time_limit": None,
    "acks_late": None,
    "max_retries": None,
    "default_retry_delay": None,
    "autoretry_for": (),
    "dont_autoretry_for": (),
    "retry_kwargs": None,
    "retry_backoff": False,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "ignore_result": None,
    "bind": False,
    "expires": None,
    "serializer": None,
    "typing": True,
    "track_started": None,
    # Celery 5.5: arguments validated into the pydantic models their annotations name
    "pydantic": False,
    "pydantic_strict": False,
    "pydantic_context": None,
    "pydantic_dump_kwargs": None,
    "trail": True,  # accepted for Celery's sake: the tasks a task sends are always recorded
}
#: The pydantic layer, named by dotted path: loaded only for ``pydantic=True`` tasks.
_VALIDATING = "celeriac.validation:validating"


_NO_REQUEST = Request()


def _check_concurrency(name: str, limit: Any, key: Any) -> None:
    """A clear error for a concurrency limit that cannot work."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigurationError(
            f"concurrency_limit={limit!r} of {name} must be a whole number of at least 1 "
            "(tasks running at once), or None for no limit"
        )
    if key is not None and limit is None:
        raise ConfigurationError(
            f"concurrency_key of {name} needs concurrency_limit=N: how many may run at once per key"
        )
    if key is not None and not (isinstance(key, str) or callable(key)):
        raise ConfigurationError(
            f"concurrency_key={key!r} of {name} must be an argument's name or a callable "
            "(args, kwargs) -> str"
        )


def _to_timestamp(value: float | datetime | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    raise ConfigurationError(f"{name} must be a datetime or unix seconds, not {value!r}")


class Task(Generic[P, R]):
    """A registered task. Call it to run it here; ``delay`` to run it on a worker."""

    # Options (see TASK_OPTIONS); None means "the app's setting".
    queue: str | None
    priority: int | None
    rate_limit: str | float | None
    rate_limit_key: str | Callable[[tuple[Any, ...], dict[str, Any]], str] | None
    concurrency_limit: int | None
    concurrency_key: str | Callable[[tuple[Any, ...], dict[str, Any]], str] | None
    unique: bool | str | Callable[[tuple[Any, ...], dict[str, Any]], str] | None
    unique_for: float | None
    debounce: float | None
    time_limit: float | None
    soft_time_limit: float | None
    acks_late: bool | None
    max_retries: int | None
    default_retry_delay: float | None
    autoretry_for: tuple[type[BaseException], ...]
    dont_autoretry_for: tuple[type[BaseException], ...]
    retry_kwargs: dict[str, Any] | None
    retry_backoff: bool | float
    retry_backoff_max: float
    retry_jitter: bool
    ignore_result: bool | None
    bind: bool
    expires: float | datetime | None
    serializer: str | None
    typing: bool
    track_started: bool | None
    pydantic: bool
    pydantic_strict: bool
    pydantic_context: dict[str, Any] | None
    pydantic_dump_kwargs: dict[str, Any] | None
    trail: bool

    #: The app a subclass of ``app.Task`` belongs to (see :attr:`Celeriac.Task`).
    _bound_app: ClassVar[Celeriac | None] = None

    def __init__(
        self, app: Celeriac | None = None, fun: Callable[..., Any] | None = None, **options: Any
    ) -> None:
        """``Task(app, function, **options)`` for ``@app.task``; ``MyTask()`` for a
        class-based task, whose ``run`` method is the body and whose class attributes
        are its options (register it with ``app.register_task``)."""
        cls = type(self)
        class_based = fun is None
        if fun is None:
            if cls.run is Task.run:
                raise ConfigurationError(
                    f"{cls.__qualname__} has no run() method: a class-based task defines "
                    "run(self, ...), the body of the task"
                )
            fun = self.run
            default_name = f"{cls.__module__}.{cls.__name__}"
        else:
            default_name = f"{fun.__module__}.{fun.__name__}"
            if options.get("pydantic"):
                fun = load_object(_VALIDATING)(
                    fun,
                    strict=bool(options.get("pydantic_strict")),
                    context=options.get("pydantic_context"),
                    dump_kwargs=options.get("pydantic_dump_kwargs"),
                )
            self.run = fun  # type: ignore[method-assign]
        unknown = set(options) - set(TASK_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"unknown task option(s) {sorted(unknown)} on {fun.__qualname__}: "
                f"known options are {sorted(TASK_OPTIONS)}"
            )
        self.app = app or cls._bound_app or current_app()
        if default_name.startswith("__main__.") and self.app.main:
            # run as a script: named after the app, as Celery does, so that a worker
            # importing the module by name knows the same task
            default_name = f"{self.app.main}.{default_name.partition('.')[2]}"
        self.__wrapped__ = fun
        self.__doc__ = fun.__doc__
        self.__module__ = fun.__module__
        class_name = getattr(cls, "name", None) if class_based else None
        self.name: str = options.get("name") or class_name or default_name
        self.is_async = inspect.iscoroutinefunction(fun)
        for key, default in TASK_OPTIONS.items():
            if key != "name":  # the option given, else a (sub)class attribute, else the default
                setattr(self, key, options.get(key, getattr(cls, key, default)))
        if self.priority is not None:
            check_priority(self.priority)
        if self.rate_limit is not None:
            parse_rate(self.rate_limit)
        _check_concurrency(self.name, self.concurrency_limit, self.concurrency_key)
        window(self.name, self.unique_for)
        debounce_delay(self.name, self.debounce)
        self.autoretry_for = tuple(self.autoretry_for or ())
        self._signature = inspect.signature(fun)
        self._positional_range = _positional_range(self._signature, self.bind)

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """The body of the task: the decorated function, or a class-based task's method."""
        raise NotImplementedError  # replaced by __init__ or overridden by a subclass

    # -- lifecycle hooks: override in a base class (``@app.task(base=MyTask)``) ------------
    # Called in the process that runs the task, with Celery's signatures: before_start
    # before the body; the others once the outcome is stored, before the message is acked.
    def before_start(self, task_id: str, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
        """The task is about to run."""

    def on_success(
        self, retval: Any, task_id: str, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> None:
        """The task returned ``retval``."""

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        """The task failed with ``exc`` (``einfo.traceback`` is the formatted traceback)."""

    def on_retry(
        self,
        exc: BaseException,
        task_id: str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        """The task will run again, after failing with ``exc``."""

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo | None,
    ) -> None:
        """After on_success, on_failure or on_retry: ``status`` is the task's state."""

    def update_state(
        self,
        task_id: str | None = None,
        state: str | None = None,
        meta: Any = None,
        **kwargs: Any,
    ) -> None:
        """Store a state of your own naming and its ``meta`` (JSON) for this task (or
        ``task_id``): read back by ``AsyncResult(id).state`` and ``.info``, sent as a
        ``task-progress`` event, shown by the dashboard as the task's progress."""
        request = self.request
        task_id = task_id or request.id
        if task_id is None:
            raise TaskError(
                "update_state() outside a running task needs task_id=: which task's state?"
            )
        if state is None:
            raise ConfigurationError("update_state() needs state=, e.g. state='PROGRESS'")
        if state in states.READY_STATES:
            raise ConfigurationError(
                f"update_state(state={state!r}): {sorted(states.READY_STATES)} are the task's "
                "own outcome; name a state of yours, such as PROGRESS"
            )
        report_progress(self.app, task_id, self.name, state, meta, request)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.bind:
            return self.run(self, *args, **kwargs)  # type: ignore[no-any-return]
        return self.run(*args, **kwargs)  # type: ignore[no-any-return]

    # -- effective options: the task's own, else the app's setting --------------
    @property
    def effective_acks_late(self) -> bool:
        """Ack after the task ran (``acks_late``, else ``task_acks_late``)."""
        acks_late = self.acks_late
        return self.app.conf.task_acks_late if acks_late is None else acks_late

    @property
    def effective_ignore_result(self) -> bool:
        """Store no result (``ignore_result``, else ``task_ignore_result``)."""
        ignore_result = self.ignore_result
        return self.app.conf.task_ignore_result if ignore_result is None else ignore_result

    @property
    def effective_max_retries(self) -> int | None:
        """Retries allowed (``max_retries``, else ``task_default_max_retries``); None: no end."""
        max_retries = self.max_retries
        return self.app.conf.task_default_max_retries if max_retries is None else max_retries

    @property
    def effective_retry_delay(self) -> float:
        """Seconds before a retry (``default_retry_delay``, else ``task_default_retry_delay``)."""
        delay = self.default_retry_delay
        return self.app.conf.task_default_retry_delay if delay is None else delay

    @property
    def request(self) -> Request:
        """The invocation being run in this thread or coroutine."""
        return current_request() or _NO_REQUEST

    # -- sending ---------------------------------------------------------------
    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send the task to a worker with these arguments."""
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        countdown: float | None = None,
        eta: float | datetime | None = None,
        expires: float | datetime | None = None,
        task_id: str | None = None,
        headers: dict[str, Any] | None = None,
        link: Any = None,
        link_error: Any = None,
        ignore_result: bool | None = None,
        **options: Any,
    ) -> AsyncResult[R]:
        """Send the task with full control over where and when it runs.

        ``unique_key=`` (and ``unique_for=`` seconds, or None: until it finishes) makes
        this send unique: while another send of the same key holds it, this one
        publishes nothing and returns that send's result. With ``debounce=`` seconds
        the last send of the key wins instead, and runs that much later
        (:mod:`celeriac.unique`).
        """
        args, kwargs = tuple(args or ()), dict(kwargs or {})
        if self.typing:
            self._check_arguments(args, kwargs)
        unique_key = store_key(self, args, kwargs, options.pop("unique_key", None))
        hold = window(self.name, options.pop("unique_for", self.unique_for))
        debounce = debounce_delay(self.name, options.pop("debounce", self.debounce))
        if self.app.conf.task_always_eager:  # callbacks run eagerly too
            return self.apply(
                args, kwargs, task_id, headers=headers, link=link, link_error=link_error
            )
        if debounce is not None:
            if unique_key is None:
                raise ConfigurationError(
                    f"debounce of {self.name} needs a key: pass unique_key= or set unique="
                )
            if countdown is not None or eta is not None:
                raise ConfigurationError(
                    f"debounce of {self.name} sets when it runs: drop countdown/eta"
                )
            task_id = task_id or new_id()
            take_over(self, unique_key, task_id, debounce)
            headers = {**(headers or {}), DEBOUNCE_HEADER: unique_key}
            countdown, unique_key = debounce, None  # nothing to free if the send fails
        elif unique_key is not None:
            task_id = task_id or new_id()
            holder = claim(self, unique_key, task_id, hold)
            if holder != task_id:  # another send holds the key: its result is ours
                held: AsyncResult[R] = self.app.AsyncResult(holder, task_name=self.name)
                return held
            if hold is None:  # the worker frees the key when the task finishes
                headers = {**(headers or {}), UNIQUE_HEADER: unique_key}
        try:
            message = self.build_message(
                args,
                kwargs,
                queue=queue,
                priority=priority,
                countdown=countdown,
                eta=eta,
                expires=expires,
                task_id=task_id,
                headers=headers,
                link=link,
                link_error=link_error,
                ignore_result=ignore_result,
                **options,
            )
            self.app.publish([message])
        except BaseException:
            if unique_key is not None and task_id is not None:
                release(self, unique_key, task_id)  # not sent: the key is free again
            raise
        result: AsyncResult[R] = self.app.AsyncResult(message.id, task_name=self.name)
        return result

    def delay_on_commit(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send the task once the current database transaction commits; never on rollback.

        With the Django integration loaded (``celeriac.contrib.django``) this
        waits for ``transaction.on_commit``; outside a transaction, or without
        it, it sends at once. The returned result's
        id is fixed now, so it can be saved in the same transaction.
        """
        return self.apply_async_on_commit(args, kwargs)

    def apply_async_on_commit(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult[R]:
        """``apply_async`` once the current transaction commits (see ``delay_on_commit``)."""
        args, kwargs = tuple(args or ()), dict(kwargs or {})
        if self.typing:  # a wrong call fails here, in the caller, not at commit time
            self._check_arguments(args, kwargs)
        task_id = options.pop("task_id", None) or new_id()
        using = options.pop("using", None)

        sent: list[AsyncResult[R]] = []

        def send() -> None:
            sent.append(self.apply_async(args, kwargs, task_id=task_id, **options))

        integration = self.app.integration
        if integration is None:  # no web framework here: no transaction to wait for
            send()
        else:
            integration.on_commit(send, using)
        if sent:  # no transaction to wait for: sent already (or run, when eager)
            return sent[0]
        result: AsyncResult[R] = self.app.AsyncResult(task_id, task_name=self.name)
        return result

    def _check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        span = self._positional_range
        if span is not None and not kwargs and span[0] <= len(args) <= span[1]:
            return  # the common case, without the cost of Signature.bind
        try:
            if self.bind:
                self._signature.bind(None, *args, **kwargs)
            else:
                self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(
                f"{self.name}{_call_signature(self._signature, self.bind)}: {exc}"
            ) from None

    def build_message(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        queue: str | None = None,
        priority: int | None = None,
        countdown: float | None = None,
        eta: float | datetime | None = None,
        expires: float | datetime | None = None,
        task_id: str | None = None,
        headers: dict[str, Any] | None = None,
        link: Any = None,
        link_error: Any = None,
        ignore_result: bool | None = None,
        parent_id: str | None = None,
        root_id: str | None = None,
        group_id: str | None = None,
        group_index: int | None = None,
        chord: dict[str, Any] | None = None,
        retries: int = 0,
    ) -> Message:
        """The message ``apply_async`` would send, routed and with every default applied."""
        now = time.time()
        route = self.app.router.route(self, args, kwargs, queue, priority)
        eta_ts = None
        if countdown is not None:
            eta_ts = now + countdown
        elif eta is not None:
            eta_ts = _to_timestamp(eta, "eta")
        expires = expires if expires is not None else self.expires
        expires_ts: float | None = None
        if isinstance(expires, (int, float)) and not isinstance(expires, bool):
            expires_ts = now + float(expires)
        elif expires is not None:
            expires_ts = _to_timestamp(expires, "expires")
        task_id = task_id or new_id()
        if parent_id is None:
            current = current_request()
            if current is not None and current.id is not None:
                parent_id, root_id = current.id, root_id or current.root_id or current.id
        if ignore_result is None:
            ignore_result = self.effective_ignore_result
        return Message(
            id=task_id,
            task=self.name,
            args=args,
            kwargs=kwargs,
            queue=route["queue"],
            priority=route["priority"],
            eta=eta_ts if eta_ts and eta_ts > now else None,
            expires=expires_ts,
            retries=retries,
            parent_id=parent_id,
            root_id=root_id or task_id,
            group_id=group_id,
            group_index=group_index,
            chord=chord,
            callbacks=_signature_dicts(link) if link is not None else (),
            errbacks=_signature_dicts(link_error) if link_error is not None else (),
            ignore_result=ignore_result,
            sent_at=now,
            headers=dict(headers) if headers else {},
        )

    def apply(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        task_id: str | None = None,
        *,
        headers: Mapping[str, Any] | None = None,
        retries: int = 0,
        throw: bool | None = None,
        link: Any = None,
        link_error: Any = None,
        **options: Any,
    ) -> EagerResult[R]:
        """Run the task here and now, as a worker would, and return its result.

        ``headers`` reach ``self.request.headers``; ``retries`` is the retry this run
        counts as (``self.request.retries``); ``throw`` raises a failure here, or not
        (default: ``task_eager_propagates``); ``link`` / ``link_error`` run after it,
        with the arguments a worker gives them. Where and when to send (``queue``,
        ``countdown``...) mean nothing for a run here: those and unknown options are
        refused.
        """
        if options:
            raise ConfigurationError(_refused_apply_options(self.name, options))
        if link is not None or link_error is not None:
            sig = self.signature(args, kwargs, task_id=task_id, link=link, link_error=link_error)
            if headers:
                sig.set(headers=dict(headers))
            return run_linked(self.app, sig, retries, throw)
        message = Message(
            id=task_id or new_id(),
            task=self.name,
            args=tuple(args or ()),
            kwargs=dict(kwargs or {}),
            retries=retries,
            headers=dict(headers) if headers else {},
        )
        return run_eagerly(self, message, throw)

    # -- inside a running task ---------------------------------------------------
    def retry(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: float | datetime | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Retry:
        """End this attempt and schedule another; past ``max_retries``, fail with ``exc``."""
        request = self.request
        limit = max_retries if max_retries is not None else self.effective_max_retries
        if limit is not None and request.retries >= limit:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(f"{self.name}[{request.id}] exceeded max_retries={limit}")
        if countdown is None and eta is None:
            countdown = self.effective_retry_delay
        when: float | None = countdown if eta is None else _to_timestamp(eta, "eta")
        retry = Retry(exc=exc, when=when, is_eta=eta is not None, new_args=args, new_kwargs=kwargs)
        if throw:
            raise retry
        return retry

    # -- canvas ------------------------------------------------------------------
    @overload
    def s(self, *args: P.args, **kwargs: P.kwargs) -> Signature: ...
    @overload
    def s(
        self: Task[Concatenate[Any, _P], Any], *args: _P.args, **kwargs: _P.kwargs
    ) -> Signature: ...
    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature of this task with these (partial) arguments.

        Type checkers accept the task's full arguments, or all but the first, which
        a chain fills in with the previous task's result.
        """
        return Signature(self.name, args, kwargs, app=self.app)

    def si(self, *args: P.args, **kwargs: P.kwargs) -> Signature:
        """An immutable signature: a parent's result is not prepended to its arguments."""
        return Signature(self.name, args, kwargs, immutable=True, app=self.app)

    def signature(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Signature:
        return Signature(self.name, tuple(args or ()), dict(kwargs or {}), options, app=self.app)

    def map(self, it: Any) -> Signature:
        """One ``celeriac.map`` task that calls this task's function on each item."""
        return xmap(self.signature(), it)

    def starmap(self, it: Any) -> Signature:
        """One ``celeriac.starmap`` task that calls this task's function with each item's args."""
        return xstarmap(self.signature(), it)

    def chunks(self, it: Any, n: int) -> Signature:
        """A group of ``celeriac.starmap`` tasks over ``it`` (argument tuples), ``n`` per task."""
        return chunks(self.signature(), it, n)


class AsyncTask(Task[P, R]):
    """A task whose function is ``async def``: calling it here gives the coroutine to await;
    ``delay`` and ``apply_async`` send it as any task, and its result is the awaited value."""

    def __call__(  # type: ignore[override]
        self, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, R]:
        return super().__call__(*args, **kwargs)  # type: ignore[return-value]


def task_class(fun: Callable[..., Any]) -> type[Task[Any, Any]]:
    """The class a function registers as: :class:`AsyncTask` for ``async def``."""
    return AsyncTask if inspect.iscoroutinefunction(fun) else Task


class TaskDecorator(Protocol):
    """What ``@app.task(...)`` returns: turns a function into a task of the same signature."""

    @overload
    def __call__(self, fun: Callable[_P, Coroutine[Any, Any, R]], /) -> AsyncTask[_P, R]: ...
    @overload
    def __call__(self, fun: Callable[_P, R], /) -> Task[_P, R]: ...


class BoundTaskDecorator(Protocol):
    """What ``@app.task(bind=True, ...)`` returns: the first parameter (the task itself,
    ``self``) is not part of the task's call signature."""

    @overload
    def __call__(
        self, fun: Callable[Concatenate[Any, _P], Coroutine[Any, Any, R]], /
    ) -> AsyncTask[_P, R]: ...
    @overload
    def __call__(self, fun: Callable[Concatenate[Any, _P], R], /) -> Task[_P, R]: ...


def _call_signature(signature: inspect.Signature, bind: bool) -> str:
    """The parameters a caller passes, for errors: ``(a: int, b: int)``, no bound ``self``,
    annotations as written (unquoted under ``from __future__ import annotations``)."""
    params = [
        p.replace(annotation=_Written(p.annotation)) if isinstance(p.annotation, str) else p
        for p in list(signature.parameters.values())[1 if bind else 0 :]
    ]
    return str(signature.replace(parameters=params, return_annotation=inspect.Signature.empty))


class _Written:
    """An annotation kept as text, shown without quotes."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _positional_range(signature: inspect.Signature, bind: bool) -> tuple[int, int] | None:
    """(required, most) positional arguments when the parameters are all plain, else None."""
    params = list(signature.parameters.values())[1 if bind else 0 :]
    if any(p.kind is not p.POSITIONAL_OR_KEYWORD for p in params):
        return None
    required = sum(1 for p in params if p.default is p.empty)
    return required, len(params)


#: What ``apply_async`` takes that ``apply`` refuses: where and when to send.
_SENDING_OPTIONS = frozenset({"queue", "priority", "countdown", "eta", "expires", "ignore_result"})


def _refused_apply_options(name: str, options: dict[str, Any]) -> str:
    sending = sorted(_SENDING_OPTIONS.intersection(options))
    unknown = sorted(set(options) - _SENDING_OPTIONS)
    reasons = [f"unknown option(s) {unknown}"] if unknown else []
    if sending:
        reasons.append(f"{sending} say how to send it: use apply_async")
    return (
        f"{name}.apply() runs the task here and now: {'; '.join(reasons)} "
        "(it takes args, kwargs, task_id, headers, retries, throw, link, link_error)"
    )


def _signature_dicts(value: Any) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else [value]
    return tuple(dict(item) if isinstance(item, Mapping) else item.to_dict() for item in items)
