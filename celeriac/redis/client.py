"""Connecting to Redis, for the broker and the result backend alike.

URLs (options may also be given as query parameters, e.g. ``?max_connections=20``):

* ``redis://[[user]:password@]host[:port][/db]``, and ``rediss://`` for TLS;
* ``redis+sentinel://[:password@]host:26379[,host2:26379][/db]?master_name=mymaster``
  (or the option ``master_name``): the master is found through Sentinel and
  found again after a failover;
* ``redis+cluster://[:password@]host:port[,host2:port]`` (or ``redis://`` with
  the option ``cluster=True``): Redis Cluster, database 0 only.

This module is also where redis-py exceptions become celeriac's: a connection
that cannot be made or was lost, a server still loading its data, a read-only
replica after a failover, a cluster that is down, are all "unavailable" (the
caller may retry); anything else is a plain error.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..exceptions import BrokerError, BrokerRefused, ConfigurationError, MissingExtraError
from ..urls import redact

try:
    import redis
    from redis.backoff import ExponentialBackoff, NoBackoff
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("redis", "redis-py") from exc

logger = logging.getLogger("celeriac.redis")

DEFAULT_PREFIX = "celeriac"

#: Options celeriac reads (broker_transport_options or URL query), with their types.
OPTIONS: dict[str, type] = {
    "global_keyprefix": str,
    "db": int,
    "max_connections": int,
    "socket_timeout": float,
    "socket_connect_timeout": float,
    "socket_keepalive": bool,
    "health_check_interval": float,
    "publish_retry_timeout": float,
    "master_name": str,
    "sentinel_kwargs": dict,
    "cluster": bool,
    "username": str,
    "password": str,
    "client_name": str,
    "ssl_cert_reqs": str,
    "ssl_ca_certs": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "ssl_check_hostname": bool,
}

DEFAULTS: dict[str, Any] = {
    "global_keyprefix": DEFAULT_PREFIX,
    "max_connections": 64,
    "socket_timeout": 30.0,
    "socket_connect_timeout": 5.0,
    "socket_keepalive": True,
    "health_check_interval": 0.0,
    "publish_retry_timeout": 10.0,
}

#: Celery/kombu Redis transport options that celeriac accepts and does not need.
UNNEEDED: dict[str, str] = {
    "priority_steps": "priorities 0-9 are always ten distinct, strict levels",
    "sep": "priority lists are named by celeriac",
    "queue_order_strategy": "queues are taken by strict priority, then FIFO across them",
    "polling_interval": "fetch blocks on a notification and never polls",
    "unacked_key": "leases replace the unacked index",
    "unacked_index_key": "leases replace the unacked index",
    "unacked_mutex_key": "leases replace the unacked index",
    "unacked_mutex_expire": "leases replace the unacked index",
    "unacked_restore_limit": "leases replace the unacked index",
    "fanout_prefix": "broadcasts use streams",
    "fanout_patterns": "broadcasts use streams",
    "retry_on_timeout": "publishers retry within publish_retry_timeout",
    "max_retries": "publishers retry within publish_retry_timeout",
    "interval_start": "publishers retry within publish_retry_timeout",
    "interval_step": "publishers retry within publish_retry_timeout",
    "interval_max": "publishers retry within publish_retry_timeout",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_SSL_REQS = {
    "none": "none",
    "optional": "optional",
    "required": "required",
    "cert_none": "none",
    "cert_optional": "optional",
    "cert_required": "required",
}


def _coerce(name: str, value: Any, kind: type) -> Any:
    if kind is bool and isinstance(value, str):
        if value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ConfigurationError(f"Redis option {name}={value!r} must be true or false")
    if kind is dict:
        if not isinstance(value, dict):
            raise ConfigurationError(f"Redis option {name} must be a dict, not {value!r}")
        return value
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"Redis option {name}={value!r} must be a {kind.__name__}"
        ) from None


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """Known options with their types; unknown ones are logged with the nearest known name."""
    checked = dict(DEFAULTS)
    for name, value in options.items():
        if name in OPTIONS:
            checked[name] = _coerce(name, value, OPTIONS[name])
        elif name in UNNEEDED:
            logger.warning("Redis option %s is not needed by celeriac: %s", name, UNNEEDED[name])
        else:
            near = difflib.get_close_matches(name, [*OPTIONS, *UNNEEDED], n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            logger.warning("unknown Redis option %r is ignored%s", name, hint)
    prefix = checked["global_keyprefix"]
    if not prefix or "{" in prefix or "}" in prefix:
        raise ConfigurationError(
            f"global_keyprefix {prefix!r} must be a non-empty string without braces"
        )
    return checked


@dataclass(frozen=True)
class RedisTarget:
    """Where a Redis URL points, and how to connect to it."""

    url: str  # redacted, for messages
    kind: str  # "single", "sentinel" or "cluster"
    hosts: tuple[tuple[str, int], ...]
    db: int
    tls: bool
    username: str | None
    password: str | None
    options: dict[str, Any] = field(compare=False)

    @property
    def server(self) -> tuple[Any, ...]:
        """Identifies the server (any database), to tell when two URLs reach the same one."""
        return (
            self.kind,
            self.hosts,
            self.options.get("master_name"),
            self.username,
            self.password,
        )

    @property
    def prefix(self) -> str:
        return str(self.options["global_keyprefix"])


def _hosts(netloc: str, default_port: int, url: str) -> tuple[tuple[str, int], ...]:
    hosts = []
    for part in netloc.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep:
            host, port = port, str(default_port)
        host = host.strip("[]") or "localhost"
        try:
            hosts.append((host, int(port or default_port)))
        except ValueError:
            raise ConfigurationError(f"Redis URL {redact(url)!r} has a bad port {port!r}") from None
    return tuple(hosts)


def _from_kombu_sentinel(url: str) -> str:
    """kombu's ``sentinel://:pw@h1:26379;sentinel://h2:26379/0`` as
    ``redis+sentinel://:pw@h1:26379,h2:26379/0``: credentials, database and query from
    whichever part gives them."""
    creds, hosts, path, query = "", [], "", ""
    for part in filter(None, (p.strip() for p in url.split(";"))):
        rest = part.partition("://")[2]
        rest, _, part_query = rest.partition("?")
        netloc, slash, part_path = rest.partition("/")
        part_creds, at, host = netloc.rpartition("@")
        creds = creds or (part_creds + at)
        hosts.append(host)
        path = path or (slash + part_path if part_path else "")
        query = query or part_query
    return f"redis+sentinel://{creds}{','.join(hosts)}{path}{'?' + query if query else ''}"


def parse_url(url: str, options: dict[str, Any] | None = None) -> RedisTarget:
    """Read a Redis URL plus options (explicit options win over the URL's query).

    Besides ``redis://``, ``rediss://``, ``redis+sentinel://h1,h2`` and
    ``redis+cluster://``, kombu's ``sentinel://h1:26379;sentinel://h2:26379`` (with
    the ``master_name`` transport option) is read as Celery's documentation writes it.
    """
    if url.lower().startswith("sentinel://"):
        url = _from_kombu_sentinel(url)
    shown = redact(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss", "redis+sentinel", "redis+cluster"):
        raise ConfigurationError(
            f"{shown!r} is not a Redis URL: use redis://, rediss://, redis+sentinel:// "
            "or redis+cluster://"
        )
    merged = {**dict(parse_qsl(parts.query)), **(options or {})}
    opts = check_options(merged)
    creds, _, netloc = parts.netloc.rpartition("@")
    user, _, password = creds.partition(":")
    kind = {"redis+sentinel": "sentinel", "redis+cluster": "cluster"}.get(scheme, "single")
    if kind == "single" and opts.get("cluster"):
        kind = "cluster"
    hosts = _hosts(netloc, 26379 if kind == "sentinel" else 6379, shown)
    if kind == "single" and len(hosts) > 1:
        raise ConfigurationError(
            f"Redis URL {shown!r} names several hosts: use redis+sentinel:// or "
            "redis+cluster:// for more than one"
        )
    if kind == "sentinel" and not opts.get("master_name"):
        raise ConfigurationError(
            f"Sentinel URL {shown!r} needs the master's name: add ?master_name=mymaster "
            "or the transport option master_name"
        )
    path = parts.path.strip("/") or str(opts.get("db", 0))
    try:
        db = int(path)
    except ValueError:
        raise ConfigurationError(
            f"Redis URL {shown!r}: database {path!r} is not a number"
        ) from None
    if kind == "cluster" and db != 0:
        raise ConfigurationError(f"Redis Cluster URL {shown!r} names database {db}: use 0")
    return RedisTarget(
        url=shown,
        kind=kind,
        hosts=hosts,
        db=db,
        tls=scheme == "rediss",
        username=opts.get("username") or unquote(user) or None,
        password=opts.get("password") or unquote(password) or None,
        options=opts,
    )


def _connection_kwargs(target: RedisTarget) -> dict[str, Any]:
    opts = target.options
    kwargs: dict[str, Any] = {
        "username": target.username,
        "password": target.password,
        "socket_timeout": opts["socket_timeout"] or None,
        "socket_connect_timeout": opts["socket_connect_timeout"] or None,
        "socket_keepalive": opts["socket_keepalive"],
        "health_check_interval": opts["health_check_interval"],
        "client_name": opts.get("client_name"),
    }
    if target.tls:
        kwargs["ssl"] = True
        for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname"):
            if name in opts:
                kwargs[name] = opts[name]
        if "ssl_cert_reqs" in opts:
            reqs = _SSL_REQS.get(opts["ssl_cert_reqs"].lower())
            if reqs is None:
                raise ConfigurationError(
                    f"ssl_cert_reqs={opts['ssl_cert_reqs']!r}: use none, optional or required"
                )
            kwargs["ssl_cert_reqs"] = reqs
    return kwargs


def run_id(client: Any) -> str:
    """The server process's random id (``INFO server``): equal ids are one server."""
    return str(client.info("server")["run_id"])


def may_share(a: RedisTarget, b: RedisTarget) -> bool:
    """Whether two single-server targets with the same login might reach one server
    under different spellings (``localhost`` and ``127.0.0.1``): ask ``run_id``."""
    return a.kind == b.kind == "single" and (a.username, a.password) == (b.username, b.password)


def connect(target: RedisTarget) -> Any:
    """A redis-py client for the target (``Redis``, a Sentinel master, or ``RedisCluster``)."""
    kwargs = _connection_kwargs(target)
    # One quiet retry on a lost connection: pooled sockets die when the server restarts.
    retry = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
    if target.kind == "cluster":
        from redis.cluster import ClusterNode, RedisCluster

        nodes = [ClusterNode(host, port) for host, port in target.hosts]  # type: ignore[no-untyped-call]
        return RedisCluster(
            startup_nodes=nodes,
            max_connections=target.options["max_connections"],
            # slot moves and failovers are retried briefly; an outage is reported fast
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
            **kwargs,
        )
    if target.kind == "sentinel":
        from redis.sentinel import Sentinel

        sentinel_kwargs = dict(target.options.get("sentinel_kwargs") or {})
        sentinel_kwargs.setdefault("socket_timeout", kwargs["socket_timeout"])
        sentinel_kwargs.setdefault("socket_connect_timeout", kwargs["socket_connect_timeout"])
        sentinel = Sentinel(list(target.hosts), sentinel_kwargs=sentinel_kwargs)
        return sentinel.master_for(
            target.options["master_name"],
            db=target.db,
            retry=retry,
            max_connections=target.options["max_connections"],
            **kwargs,
        )
    host, port = target.hosts[0]
    if kwargs.pop("ssl", False):
        kwargs["connection_class"] = redis.SSLConnection
    pool = redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
        host=host,
        port=port,
        db=target.db,
        retry=retry,
        max_connections=target.options["max_connections"],
        timeout=kwargs["socket_connect_timeout"],
        **kwargs,
    )
    return redis.Redis(connection_pool=pool)


def disconnect(client: Any) -> None:
    """Close every connection of a client, its pool included."""
    client.close()
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        pool.disconnect()


# -- errors ----------------------------------------------------------------------
_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.MasterDownError,
)


def is_unavailable(exc: BaseException) -> bool:
    """Would the same call work once the server is back (not a mistake of ours)?"""
    return isinstance(exc, _UNAVAILABLE) and not isinstance(
        exc, redis.exceptions.AuthenticationError
    )


def translate(
    exc: BaseException,
    target: RedisTarget,
    what: str,
    unavailable: Callable[[str], Exception],
    error: Callable[[str], Exception],
) -> Exception:
    """The celeriac exception for a redis-py one (raise it ``from exc``)."""
    if isinstance(exc, redis.exceptions.AuthenticationError):
        refused = BrokerRefused if error is BrokerError else error
        return refused(
            f"{what} at {target.url} refused the credentials: check the user and "
            f"password in the URL ({exc})"
        )
    if is_unavailable(exc):
        return unavailable(
            f"{what} at {target.url} is unavailable ({type(exc).__name__}: "
            f"{exc}); it will be retried when the server is back"
        )
    return error(f"{what} at {target.url} failed: {type(exc).__name__}: {exc}")


RedisError = redis.RedisError
NoScriptError = redis.exceptions.NoScriptError

__all__ = [
    "OPTIONS",
    "NoScriptError",
    "RedisError",
    "RedisTarget",
    "check_options",
    "connect",
    "disconnect",
    "is_unavailable",
    "parse_url",
    "translate",
]
