"""Lua scripts and pipelines: one round trip, scripts called by SHA.

Every script in ``lua/`` is sent with ``lua/_lib.lua`` in front of it, so each
is self-contained on the server. Scripts are called with ``EVALSHA``; after a
restart or a failover the server has forgotten them (``NOSCRIPT``), and they
are loaded again and the failed calls repeated, which is safe because a
``NOSCRIPT`` call did nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from .redis_client import NoScriptError


@dataclass(frozen=True)
class Script:
    """One Lua script: its full text and the SHA1 the server knows it by."""

    name: str
    text: str
    sha: str


def _read(name: str) -> str:
    return (resources.files("celeriac.brokers") / "lua" / name).read_text(encoding="utf-8")


@cache
def script(name: str) -> Script:
    """The script ``lua/<name>.lua``, with the shared helpers in front."""
    text = _read("_lib.lua") + "\n" + _read(f"{name}.lua")
    return Script(name, text, hashlib.sha1(text.encode()).hexdigest())


def call(client: Any, s: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """Run one script now (one round trip; two more the first time on a server)."""
    try:
        return client.evalsha(s.sha, len(keys), *keys, *args)
    except NoScriptError:
        client.script_load(s.text)
        return client.evalsha(s.sha, len(keys), *keys, *args)


class Batch:
    """Commands sent together in one pipeline (no MULTI): one round trip per server."""

    __slots__ = ("commands",)

    def __init__(self) -> None:
        self.commands: list[tuple[Script | None, tuple[Any, ...]]] = []

    def __len__(self) -> int:
        return len(self.commands)

    def script(self, s: Script, keys: Sequence[Any], args: Sequence[Any]) -> None:
        self.commands.append((s, ("EVALSHA", s.sha, len(keys), *keys, *args)))

    def command(self, *args: Any) -> None:
        self.commands.append((None, args))

    def run(self, client: Any) -> list[Any]:
        """Send every command; returns their replies in order, raising the first error."""
        results = _send(client, [args for _, args in self.commands])
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            for s in {self.commands[i][0] for i in missing}:
                assert s is not None
                client.script_load(s.text)
            again = _send(client, [self.commands[i][1] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results


def _send(client: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for args in commands:
        pipe.execute_command(*args)
    return list(pipe.execute(raise_on_error=False))


__all__ = ["Batch", "Script", "call", "script"]
