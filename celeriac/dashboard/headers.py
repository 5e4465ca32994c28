"""Security headers on every dashboard response: what a browser may load, frame and sniff.

The Content-Security-Policy allows the dashboard's own scripts, styles and
streams only (``'self'``) and no framing by other sites; the few inline event
handlers of the templates are allowed by their hash (``'unsafe-hashes'``),
computed from the templates themselves so the policy follows them. Forms are
not restricted by the policy: a POST forged elsewhere is refused by the CSRF
check (see ``access.py``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_TEMPLATES = Path(__file__).with_name("templates")
_HANDLER = re.compile(r'\son[a-z]+="([^"]*)"')


@cache
def _handler_hashes() -> tuple[str, ...]:
    found: set[str] = set()
    for template in sorted(_TEMPLATES.glob("*.html")):
        for handler in _HANDLER.findall(template.read_text(encoding="utf-8")):
            digest = base64.b64encode(hashlib.sha256(handler.encode()).digest()).decode()
            found.add(f"'sha256-{digest}'")
    return tuple(sorted(found))


@cache
def content_security_policy() -> str:
    """The dashboard's Content-Security-Policy header."""
    hashes = _handler_hashes()
    scripts = " ".join(("'self'", *(("'unsafe-hashes'", *hashes) if hashes else ())))
    return (
        "default-src 'self'; "
        f"script-src {scripts}; "
        "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
    )


def security_headers() -> list[tuple[bytes, bytes]]:
    """Every header added to each response (those a response sets itself are kept)."""
    return [
        (b"content-security-policy", content_security_policy().encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    ]


class SecurityHeaders:
    """ASGI middleware adding :func:`security_headers` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = security_headers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    key = name.decode()
                    if key not in headers:
                        headers[key] = value.decode()
            await send(message)

        await self.app(scope, receive, send_with_headers)


__all__ = ["SecurityHeaders", "content_security_policy", "security_headers"]
