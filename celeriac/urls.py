"""URLs and dotted paths: what registries, logs and error messages need of them.

``scheme_of`` picks the engine of a broker or backend URL; ``redact`` and
``redact_setting`` are the one rule that keeps secrets out of everything shown
(CLI, logs, control replies, events, the dashboard and its API); ``parse_url``
reads a server URL with kombu's defaults (``amqp://`` is guest:guest on
localhost:5672, vhost ``/``), naming the part that is wrong; ``load_object``
imports what a registry or a setting names as ``"package.module:attribute"``.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from .exceptions import ConfigurationError


def scheme_of(url: str) -> str:
    """The URL's scheme, lower-cased: ``"redis"`` for ``"redis://localhost"``."""
    return url.partition("://")[0].lower()


# A name holds a secret when one of its words (split on _ - . and spaces, and between
# camelCase humps) is one of these...
SECRET_WORDS = frozenset(
    {"secret", "secrets", "password", "passwords", "passwd", "pwd", "passphrase", "token",
     "tokens", "credential", "credentials", "apikey", "privatekey"}
)  # fmt: skip
# ... or when it is a key of a secret kind: api_key, secret_key, private-key, access.key
# (task_default_routing_key or result_key_prefix name no secret)
SECRET_KEY_KINDS = frozenset(
    {"api", "secret", "private", "access", "signing", "encryption", "auth", "master",
     "client", "account", "sas", "security", "hmac", "session", "license"}
)  # fmt: skip
# ... or ends with one (sslpassword, authtoken, clientsecret)
_SECRET_ENDINGS = ("password", "passwd", "passphrase", "secret", "token", "credentials")
_WORD_SEPARATORS = re.compile(r"[_\-.\s]+")
_CAMEL_HUMP = re.compile(r"([a-z0-9])([A-Z])")  # apiKey -> api_Key
HIDDEN = "***"


def is_secret_name(name: str) -> bool:
    """Whether a setting, option or URL parameter of this name holds a secret."""
    words = [w for w in _WORD_SEPARATORS.split(_CAMEL_HUMP.sub(r"\1_\2", name).lower()) if w]
    if any(word in SECRET_WORDS or word.endswith(_SECRET_ENDINGS) for word in words):
        return True
    return any(
        word == "key" and index > 0 and words[index - 1] in SECRET_KEY_KINDS
        for index, word in enumerate(words)
    )


def redact(url: str) -> str:
    """The URL without its secrets, for logs, banners, replies and pages: the password
    of its userinfo and the value of every query parameter whose name says secret,
    password, token or key (``?password=...``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    rest, hash_, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    creds, at, host = rest.rpartition("@")
    if at and ":" in creds:
        rest = f"{creds.partition(':')[0]}:{HIDDEN}@{host}"
    if question:
        query = "&".join(_redact_parameter(p) for p in query.split("&"))
    return f"{scheme}{sep}{rest}{question}{query}{hash_}{fragment}"


def _redact_parameter(parameter: str) -> str:
    name, eq, value = parameter.partition("=")
    return f"{name}={HIDDEN}" if eq and value and is_secret_name(name) else parameter


def redact_setting(name: str, value: Any) -> Any:
    """A setting's value as it may be shown: secrets hidden by name, URLs redacted,
    and the same inside dicts and lists (``broker_transport_options``)."""
    if is_secret_name(name):
        return HIDDEN if value else value
    return redact_value(value)


def redact_value(value: Any) -> Any:
    """A value as it may be shown: URLs redacted, secrets in dicts hidden by key."""
    if isinstance(value, str):
        return redact(value) if "://" in value else value
    if isinstance(value, dict):
        return {k: redact_setting(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v) for v in value)
    return value


#: Celery's and kombu's names for the RabbitMQ transport: all mean amqp:// here.
AMQP_ALIASES = {"pyamqp": "amqp", "librabbitmq": "amqp"}


@dataclass(frozen=True)
class _Defaults:
    port: int
    username: str | None = None
    password: str | None = None


#: What kombu fills in for a part a URL leaves out, by scheme.
_DEFAULTS = {
    "amqp": _Defaults(5672, "guest", "guest"),
    "amqps": _Defaults(5671, "guest", "guest"),
    "redis": _Defaults(6379),
    "rediss": _Defaults(6379),
}


@dataclass(frozen=True)
class ServerURL:
    """A server URL read as kombu reads it, with its defaults filled in."""

    scheme: str
    hostname: str
    port: int
    username: str | None
    password: str | None
    path: str  # unquoted, without the leading "/"
    query: dict[str, str] = field(default_factory=dict)

    @property
    def virtual_host(self) -> str:
        """RabbitMQ's vhost: the path; ``""``, ``/`` and kombu's ``//`` all mean ``/``."""
        return self.path or "/"


def parse_url(url: str, setting: str = "broker_url") -> ServerURL:
    """Read an ``amqp://``/``redis://`` style URL; a part that cannot work is a
    :class:`ConfigurationError` naming ``setting`` and the part."""
    shown = redact(url)
    scheme, sep, rest = url.partition("://")
    scheme = AMQP_ALIASES.get(scheme.lower(), scheme.lower())
    defaults = _DEFAULTS.get(scheme)
    if not sep or defaults is None:
        raise ConfigurationError(f"{setting} {shown!r} is not an amqp:// or redis:// URL")
    if ";" in url:
        raise ConfigurationError(
            f"{setting} {shown!r} lists several URLs (kombu's failover, separated by ';'): "
            "give one URL; for Redis failover use redis+sentinel://h1,h2 or sentinel://"
        )
    rest, _, query = rest.partition("?")
    rest = rest.partition("#")[0]
    netloc, slash, path = rest.partition("/")
    creds, _, hostport = netloc.rpartition("@")
    user, colon, password = creds.partition(":")
    host, port = _host_port(hostport, defaults.port, setting, shown)
    if not _HOST.fullmatch(host):
        raise ConfigurationError(
            f"{setting} {shown!r}: the host {host!r} is not a host name or address"
        )
    return ServerURL(
        scheme=scheme,
        hostname=unquote(host) or "localhost",
        port=port,
        username=unquote(user) if user else defaults.username,
        password=unquote(password) if colon and password else defaults.password,
        path=unquote(path) if slash else "",
        query=dict(parse_qsl(query)),
    )


#: A host name, an IPv4 address or (between brackets, taken off) an IPv6 one; or empty.
_HOST = re.compile(r"[A-Za-z0-9._%~-]*|[0-9A-Fa-f:.%]+")


def _host_port(hostport: str, default: int, setting: str, shown: str) -> tuple[str, int]:
    if hostport.startswith("["):  # [::1]:5672
        host, _, after = hostport[1:].partition("]")
        port_text = after[1:] if after.startswith(":") else ""
    else:
        host, _, port_text = hostport.partition(":")
    if not port_text:
        return host, default
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigurationError(
            f"{setting} {shown!r}: the port {port_text!r} is not a number from 1 to 65535 "
            "(a password with '/', '?', '#' or '@' in it must be URL-quoted: "
            "urllib.parse.quote(password, safe=''))"
        )
    return host, int(port_text)


def load_object(spec: str) -> Any:
    """Import ``"pkg.module"`` or ``"pkg.module:attr"`` (``attr`` may be dotted)."""
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigurationError(
                f"cannot import {module_name!r}: is it on sys.path (run from the project's "
                "directory, or set PYTHONPATH)?"
            ) from exc
        raise
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


__all__ = [
    "AMQP_ALIASES",
    "HIDDEN",
    "SECRET_KEY_KINDS",
    "SECRET_WORDS",
    "ServerURL",
    "is_secret_name",
    "load_object",
    "parse_url",
    "redact",
    "redact_setting",
    "redact_value",
    "scheme_of",
]
