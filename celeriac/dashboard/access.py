"""Who may look and who may act: basic auth, API tokens, roles, read-only mode, CSRF.

With credentials set, every path but ``/healthcheck`` needs them: an
operator's (``basic_auth``, ``api_token``) to look and act, a viewer's
(``viewer_auth``, ``viewer_token``) to look only. Actions are POSTs only; a
viewer's POST is refused, and in read-only mode every POST is. A POST from a
browser (it carries a cookie, an ``Origin`` or a ``Sec-Fetch-Site`` header)
must also carry the page's CSRF token, in the form field ``csrf_token`` or the
header ``X-CSRF-Token``, equal to the ``celeriac_csrf`` cookie
(SameSite=Strict); scripts using the token header or basic auth without a
browser are not asked for one.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

CSRF_COOKIE = "celeriac_csrf"
CSRF_FIELD = "csrf_token"
TOKEN_HEADER = "x-api-token"
OPEN_PATHS = frozenset({"/healthcheck"})


@dataclass(frozen=True, slots=True)
class Access:
    """The dashboard's access settings: an operator's credentials, a viewer's, read-only.

    ``basic_auth`` and ``api_token`` are an operator's: they may look and act.
    ``viewer_auth`` and ``viewer_token`` are a viewer's: every page and GET, no
    action. Without any of them the dashboard is open (and listens on localhost).
    """

    basic_auth: tuple[str, str] | None = None  # (user, password)
    api_token: str | None = None
    read_only: bool = False
    viewer_auth: tuple[str, str] | None = None
    viewer_token: str | None = None

    @property
    def protected(self) -> bool:
        return any(
            given is not None
            for given in (self.basic_auth, self.api_token, self.viewer_auth, self.viewer_token)
        )

    def token_ok(self, request: Request) -> bool:
        """The request carries the operator's API token (``X-API-Token`` or a Bearer)."""
        return _token_matches(request, self.api_token)

    def basic_ok(self, request: Request) -> bool:
        """The request carries the operator's basic auth."""
        return _basic_matches(request, self.basic_auth)

    def operator(self, request: Request) -> bool:
        """Whoever sent the request may act (read-only mode aside)."""
        return not self.protected or self.token_ok(request) or self.basic_ok(request)

    def allowed(self, request: Request) -> bool:
        """Whoever sent the request may look."""
        return (
            self.operator(request)
            or _token_matches(request, self.viewer_token)
            or _basic_matches(request, self.viewer_auth)
        )

    def may_act(self, request: Request) -> bool:
        return not self.read_only and self.operator(request)


def _token_matches(request: Request, token: str | None) -> bool:
    if token is None:
        return False
    given = request.headers.get(TOKEN_HEADER, "")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return bool(given) and secrets.compare_digest(given, token)


def _basic_matches(request: Request, credentials: tuple[str, str] | None) -> bool:
    if credentials is None:
        return False
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("basic "):
        return False
    try:
        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    want_user, want_password = credentials
    return secrets.compare_digest(user, want_user) & secrets.compare_digest(password, want_password)


def parse_basic_auth(value: str | None) -> tuple[str, str] | None:
    """``user:password`` as a pair; None for None."""
    if value is None:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError(f"{value!r} is not user:password (a user, a colon, a password)")
    return user, password


def from_browser(request: Request) -> bool:
    headers = request.headers
    return bool(request.cookies) or "origin" in headers or "sec-fetch-site" in headers


def csrf_ok(request: Request, submitted: str | None) -> bool:
    """The submitted token (form or header) matches the cookie."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    given = submitted or request.headers.get("x-csrf-token", "")
    return bool(cookie) and bool(given) and secrets.compare_digest(cookie, given)


def csrf_token(request: Request) -> str:
    """The page's CSRF token: the cookie's, or a new one the response must set."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(24)
        request.state.new_csrf = token
    return str(token)


def set_csrf_cookie(request: Request, response: Response) -> None:
    token = getattr(request.state, "new_csrf", None)
    if token:
        path = request.scope.get("root_path") or "/"  # mounted: only the dashboard's pages
        response.set_cookie(CSRF_COOKIE, token, httponly=False, samesite="strict", path=path)


def route_path(scope: Scope) -> str:
    """The path within the dashboard: without the prefix it is mounted under."""
    path, root = str(scope["path"]), str(scope.get("root_path", ""))
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :] or "/"
    return path


class AccessMiddleware:
    """Answers 401 to a request without the credentials the settings ask for."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if not self.access.allowed(request):
            response = JSONResponse(
                {"error": "authentication required"},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="celeriac"'}
                if self.access.basic_auth
                else {},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
