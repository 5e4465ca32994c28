"""URLs and dotted paths: what registries, logs and error messages need of them.

``scheme_of`` picks the engine of a broker or backend URL; ``redact`` and
``redact_setting`` are the one rule that keeps secrets out of everything shown
(CLI, logs, control replies, events, the dashboard and its API); ``load_object``
imports what a registry or a setting names as ``"package.module:attribute"``.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

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
    "HIDDEN",
    "SECRET_KEY_KINDS",
    "SECRET_WORDS",
    "is_secret_name",
    "load_object",
    "redact",
    "redact_setting",
    "redact_value",
    "scheme_of",
]
