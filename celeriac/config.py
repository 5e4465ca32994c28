"""Settings, with Celery's lower-case names wherever the meaning is the same.

Precedence, lowest first: defaults, then ``config_from_object`` /
``conf.update`` / keywords to ``Celeriac(...)`` in the order they are made, then
environment variables ``CELERIAC_<NAME>`` (``CELERIAC_BROKER_URL=redis://...``;
values are read as JSON when they parse, else as strings).

An unknown name is a warning naming the nearest known one; a Celery setting
that celeriac does not need is accepted with a warning that says why.
"""

from __future__ import annotations

import difflib
import os
import warnings
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson

from .backends import check_backend_url
from .brokers import check_broker_url
from .exceptions import ConfigurationError
from .rate import parse_rate
from .urls import load_object


class ConfigWarning(UserWarning):
    """A setting is unknown or unnecessary."""


def _positive_int(name: str, value: Any) -> Any:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ConfigurationError(f"{name} must be a whole number of at least 1, not {value!r}")
    return value


def _non_negative_number(name: str, value: Any) -> Any:
    if value is not None and (not isinstance(value, (int, float)) or value < 0):
        raise ConfigurationError(f"{name} must be a number of seconds >= 0, not {value!r}")
    return value


def _priority(name: str, value: Any) -> Any:
    if not isinstance(value, int) or not 0 <= value <= 9:
        raise ConfigurationError(f"{name} must be an int from 0 (lowest) to 9 (highest)")
    return value


def _url(name: str, value: Any) -> Any:
    if value is not None and (not isinstance(value, str) or "://" not in value):
        raise ConfigurationError(
            f"{name} must be a URL such as redis://localhost:6379/0, amqp://guest@localhost//, "
            f"sqlite:///celeriac.sqlite3 or memory://, not {value!r}"
        )
    return value


def _positive_number(name: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(f"{name} must be a number of seconds > 0, not {value!r}")
    return float(value)


def _timezone(name: str, value: Any) -> Any:
    if value is None:
        return None
    try:
        zoneinfo.ZoneInfo(str(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"{name} {value!r} is not a known time zone: use an IANA name such as "
            "'Europe/Berlin' or 'UTC' (the tzdata package provides them where the system has none)"
        ) from None
    return str(value)


def _broker_url(name: str, value: Any) -> Any:
    if _url(name, value) is not None:
        check_broker_url(value, name)
    return value


#: Celery's (and django-celery-results') names of backends that need no URL.
_BACKEND_ALIASES = {"rpc": "rpc://", "django-db": "django-db://", "disabled": "disabled://"}


def _backend_url(name: str, value: Any) -> Any:
    value = _BACKEND_ALIASES.get(value, value)
    if _url(name, value) is not None:
        check_backend_url(value)
    return value


def _rate(name: str, value: Any) -> Any:
    if value is not None:
        parse_rate(value)
    return value


def _as_tuple(name: str, value: Any) -> Any:
    if isinstance(value, str):
        return (value,)
    return tuple(value or ())


def _mapping(name: str, value: Any) -> Any:
    if value is not None and not isinstance(value, Mapping):
        raise ConfigurationError(f"{name} must be a dict of keyword arguments, not {value!r}")
    return dict(value or {})


def _bool(name: str, value: Any) -> Any:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, not {value!r}")
    return value


def _table_prefix(name: str, value: Any) -> Any:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a non-empty string such as 'celeriac_'")
    return value


def table_map(name: str, value: Any) -> Any:
    """Check ``database_table_names`` / ``database_table_schemas``: {task|group|chord: name}."""
    keys = ("task", "group", "chord")
    if value is not None and (
        not isinstance(value, Mapping)
        or not all(k in keys and isinstance(v, str) and v for k, v in value.items())
    ):
        raise ConfigurationError(
            f"{name} must map some of 'task', 'group', 'chord' to names, "
            f"e.g. {{'task': 'myapp_taskmeta'}}, not {value!r}"
        )
    return None if value is None else dict(value)


Validator = Callable[[str, Any], Any]

#: name -> (default, validator); defaults that are mutable are copied per app.
SETTINGS: dict[str, tuple[Any, Validator | None]] = {
    "broker_url": (None, _broker_url),
    "broker_capabilities_url": (None, _broker_url),
    "result_backend": (None, _backend_url),
    "broker_transport_options": ({}, None),
    "broker_connection_retry": (True, None),
    "broker_connection_timeout": (4.0, _non_negative_number),
    "broker_connection_max_retries": (None, None),
    "broker_pool_limit": (10, _positive_int),
    "broker_publish_confirm": (True, _bool),
    "imports": ((), _as_tuple),
    "include": ((), _as_tuple),
    "task_routes": (None, None),
    "task_queues": (None, None),
    "task_default_queue": ("celeriac", None),
    "task_default_priority": (5, _priority),
    "task_default_rate_limit": (None, _rate),
    "task_acks_late": (True, None),
    "task_time_limit": (None, _non_negative_number),
    "task_soft_time_limit": (None, _non_negative_number),
    "task_serializer": ("json", None),
    "result_serializer": ("json", None),
    "accept_content": (("json",), _as_tuple),
    "security_key": (None, None),
    "task_always_eager": (False, None),
    "task_eager_propagates": (True, None),
    "task_ignore_result": (False, None),
    "task_track_started": (False, None),
    "task_store_errors_even_if_ignored": (True, None),
    "task_default_max_retries": (3, None),
    "task_default_retry_delay": (180.0, _non_negative_number),
    "task_revoke_ttl": (86400.0 * 7, _non_negative_number),
    "result_expires": (86400.0, _non_negative_number),
    "result_extended": (True, None),
    # the SQL result backend (db+...), with Celery's names
    "database_engine_options": ({}, _mapping),
    "database_short_lived_sessions": (False, _bool),
    "database_table_names": (None, table_map),
    "database_table_schemas": (None, table_map),
    "database_table_prefix": ("celeriac_", _table_prefix),
    "database_create_tables_at_setup": (True, _bool),
    "worker_concurrency": (None, _positive_int),
    "worker_prefetch_multiplier": (None, _positive_int),  # None: the broker's default
    "worker_pool": ("prefork", None),
    "worker_max_tasks_per_child": (None, _positive_int),
    "worker_max_memory_per_child": (None, _positive_int),
    "worker_disable_rate_limits": (False, None),
    "worker_shutdown_timeout": (60.0, _non_negative_number),
    "worker_autoscale_keepalive": (30.0, _non_negative_number),
    "worker_send_task_events": (True, None),
    "task_send_sent_event": (True, None),
    "event_queue_maxlen": (100_000, _positive_int),
    "event_args_max_size": (10_000, _positive_int),
    "event_heartbeat_interval": (2.0, _non_negative_number),
    "worker_log_level": ("INFO", None),
    # periodic tasks (celeriac.beat)
    "beat_schedule": ({}, _mapping),
    "beat_lease_seconds": (10.0, _positive_number),
    "timezone": (None, _timezone),
    "enable_utc": (True, _bool),
    # one INFO line per finished task (name, id, outcome, runtime), as Celery logs
    "worker_log_task_outcomes": (True, _bool),
}

#: Celery settings that mean nothing here, and why; accepted with a warning.
UNNECESSARY: dict[str, str] = {
    "priority_steps": "priorities are always 0-9, strict, on every broker",
    "task_queue_max_priority": "queues always take 0-9 priorities",
    "task_create_missing_queues": "queues are always created on first use",
    "broker_connection_retry_on_startup": "workers always retry with backoff at start",
    "worker_enable_remote_control": "control replies cost nothing while idle",
    "beat_scheduler": "the beat keeps its schedule and state in the broker",
    "beat_schedule_filename": "the beat keeps its state in the broker, not a file",
    "beat_sync_every": "the beat records each run in the broker as it sends it",
    "beat_max_loop_interval": "the beat wakes at each due time and within 0.5 s of a change",
    "result_chord_join_timeout": "a chord's join is an atomic counter, nothing waits",
    "worker_hijack_root_logger": "celeriac configures only its own loggers",
    "task_reject_on_worker_lost": "a lost worker's tasks always go back to their queue",
}


def _check_name(name: str) -> bool:
    """True when ``name`` is a setting to store; warns otherwise."""
    if name in SETTINGS:
        return True
    if name in UNNECESSARY:
        warnings.warn(
            f"setting {name!r} is not needed by celeriac: {UNNECESSARY[name]}",
            ConfigWarning,
            stacklevel=4,
        )
        return False
    nearest = difflib.get_close_matches(name, list(SETTINGS), n=1, cutoff=0.6)
    hint = f"; did you mean {nearest[0]!r}?" if nearest else ""
    warnings.warn(f"unknown setting {name!r}{hint}", ConfigWarning, stacklevel=4)
    return False


def _env_value(raw: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


class Settings(Mapping[str, Any]):
    """An app's settings: ``conf.broker_url``, ``conf["broker_url"]``, ``conf.update(...)``."""

    # Settings read for every task or message, with their types. Annotations only: the
    # values live in the instance's __dict__ (see __init__), so reading one stays a plain
    # attribute lookup.
    task_acks_late: bool
    task_ignore_result: bool
    task_default_max_retries: int | None
    task_default_retry_delay: float
    task_always_eager: bool
    task_eager_propagates: bool
    task_track_started: bool
    task_store_errors_even_if_ignored: bool
    task_send_sent_event: bool
    task_default_rate_limit: str | float | None
    task_time_limit: float | None
    task_soft_time_limit: float | None
    result_extended: bool
    worker_send_task_events: bool
    worker_disable_rate_limits: bool
    event_args_max_size: int

    def __init__(self, on_change: Callable[[set[str]], None] | None = None) -> None:
        values = {name: default for name, (default, _) in SETTINGS.items()}
        for name, value in values.items():
            if isinstance(value, dict):
                values[name] = dict(value)
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_on_change", on_change)
        # Each setting also as an instance attribute: ``conf.name`` on the hot path is
        # then a plain lookup (0.05 us), not a __getattr__ call (0.6 us).
        self.__dict__.update(values)

    def _set_many(self, items: Mapping[str, Any]) -> None:
        accepted: dict[str, Any] = {}
        for name, value in items.items():
            if _check_name(name):
                validator = SETTINGS[name][1]
                accepted[name] = validator(name, value) if validator else value
        self._values.update(accepted)
        self.__dict__.update(accepted)
        if accepted and self._on_change is not None:
            self._on_change(set(accepted))

    def update(self, other: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Set several settings at once."""
        self._set_many({**(other or {}), **kwargs})

    def apply_environment(self, environ: Mapping[str, str] | None = None) -> None:
        """Apply ``CELERIAC_<NAME>`` environment variables."""
        env = os.environ if environ is None else environ
        found = {
            name: _env_value(env[f"CELERIAC_{name.upper()}"])
            for name in SETTINGS
            if f"CELERIAC_{name.upper()}" in env
        }
        if found:
            self._set_many(found)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no setting named {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._set_many({name: value})

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def settings_from_object(obj: Any, namespace: str | None = None) -> dict[str, Any]:
    """The settings an object, module, dict or ``"module:attr"`` string defines."""
    if isinstance(obj, str):
        obj = load_object(obj)
    items: Mapping[str, Any] = (
        obj
        if isinstance(obj, Mapping)
        else {name: getattr(obj, name) for name in dir(obj) if not name.startswith("_")}
    )
    if namespace:
        prefix = namespace.rstrip("_") + "_"
        return {k[len(prefix) :].lower(): v for k, v in items.items() if k.startswith(prefix)}
    return {
        name: value
        for name, value in items.items()
        if name.islower()
        and not callable(value)
        and not hasattr(value, "__path__")
        and type(value).__name__ != "module"
    }
