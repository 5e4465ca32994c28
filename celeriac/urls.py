"""URLs and dotted paths: what registries, logs and error messages need of them.

``scheme_of`` picks the engine of a broker or backend URL, ``redact`` keeps a
password out of logs, and ``load_object`` imports what a registry or a setting
names as ``"package.module:attribute"``.
"""

from __future__ import annotations

import importlib
from typing import Any

from .exceptions import ConfigurationError


def scheme_of(url: str) -> str:
    """The URL's scheme, lower-cased: ``"redis"`` for ``"redis://localhost"``."""
    return url.partition("://")[0].lower()


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}" if ":" in creds else url


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


__all__ = ["load_object", "redact", "scheme_of"]
