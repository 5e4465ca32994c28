"""``celeriac -A proj dashboard --port 5555``: the web dashboard, with its collector."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from types import FrameType
from typing import Any

import click

from ..dashboard.store import Store
from ..exceptions import ConfigurationError, MissingExtraError
from ..urls import redact
from .main import app_from

logger = logging.getLogger("celeriac.dashboard")


def _open_store(db: str, prefix: str, **retention: Any) -> Store:
    """The history's store, or a click error saying what is wrong with ``--db``."""
    try:
        return Store(db, table_prefix=prefix, **retention)
    except MissingExtraError:
        raise
    except (ConfigurationError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--db") from None
    except Exception as exc:  # the database refuses or is away: say which and why
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise click.ClickException(
            f"cannot open the dashboard's database {redact(db)}: {first_line}"
        ) from exc


def _credentials(
    parse: Callable[[str | None], tuple[str, str] | None], value: str | None, option: str
) -> tuple[str, str] | None:
    try:
        return parse(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"{option} wants user:password: {exc}", param_hint=option
        ) from None


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach an address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def bind_host(address: str | None, protected: bool, unsafe_no_auth: bool) -> str:
    """Where the dashboard listens: loopback without auth, unless asked otherwise, unsafely."""
    if protected:
        return address or "0.0.0.0"
    host = address or "127.0.0.1"
    if is_loopback(host):
        click.echo(
            f"no --basic-auth or --api-token: the dashboard listens on {host} only "
            "and anyone who can reach it there may act",
            err=True,
        )
        return host
    if not unsafe_no_auth:
        raise click.UsageError(
            f"--address {host} without --basic-auth or --api-token would let anyone who "
            "reaches it pause queues and revoke tasks: set --basic-auth user:password or "
            "--api-token TOKEN (or CELERIAC_DASHBOARD_TOKEN), or pass --unsafe-no-auth "
            "to serve it open on purpose"
        )
    logger.warning(
        "UNSAFE: the dashboard listens on %s without auth (--unsafe-no-auth): anyone who "
        "can reach it may look and act",
        host,
    )
    return host


@click.command()
@click.option("--port", "-p", type=int, default=5555, show_default=True)
@click.option(
    "--address",
    default=None,
    help="bind address (default 127.0.0.1 without auth, 0.0.0.0 with; beyond loopback "
    "without auth only with --unsafe-no-auth)",
)
@click.option(
    "--unsafe-no-auth",
    is_flag=True,
    help="serve beyond loopback without auth: anyone who reaches it may act",
)
@click.option(
    "--db",
    "db",
    default="celeriac-dashboard.sqlite3",
    show_default=True,
    help="where the task history lives: a SQLite file, or a database URL "
    "(postgresql+psycopg://user@host/db, mysql+pymysql://user@host/db; pip install the driver)",
)
@click.option(
    "--db-table-prefix",
    default="",
    help="start of the history's table names, to share a database with other stores",
)
@click.option("--basic-auth", default=None, help="user:password required for every page")
@click.option(
    "--api-token",
    envvar="CELERIAC_DASHBOARD_TOKEN",
    default=None,
    help="token accepted in the X-API-Token header",
)
@click.option(
    "--viewer-auth", default=None, help="user:password of a viewer: every page, no action"
)
@click.option(
    "--viewer-token",
    envvar="CELERIAC_DASHBOARD_VIEWER_TOKEN",
    default=None,
    help="token of a viewer (X-API-Token header): every GET, no action",
)
@click.option("--read-only", is_flag=True, help="refuse every action")
@click.option("--max-tasks", type=int, default=1_000_000, show_default=True)
@click.option("--max-age", type=float, default=7 * 86400.0, show_default=True, help="seconds")
@click.pass_context
def dashboard(
    ctx: click.Context,
    port: int,
    address: str | None,
    unsafe_no_auth: bool,
    db: str,
    db_table_prefix: str,
    basic_auth: str | None,
    api_token: str | None,
    viewer_auth: str | None,
    viewer_token: str | None,
    read_only: bool,
    max_tasks: int,
    max_age: float,
) -> None:
    """Serve the dashboard: live workers, tasks with history, queues, REST API, /metrics."""
    try:
        import uvicorn

        from ..dashboard.access import parse_basic_auth
        from ..dashboard.web import create_app
    except ImportError as exc:
        if isinstance(exc, MissingExtraError):
            raise
        raise MissingExtraError("dashboard", exc.name or "uvicorn") from exc
    credentials = _credentials(parse_basic_auth, basic_auth, "--basic-auth")
    viewer = _credentials(parse_basic_auth, viewer_auth, "--viewer-auth")
    protected = any(x is not None for x in (credentials, api_token, viewer, viewer_token))
    host = bind_host(address, protected, unsafe_no_auth)
    app = app_from(ctx)
    store = _open_store(db, db_table_prefix, max_tasks=max_tasks, max_age=max_age)
    web = create_app(
        app,
        store=store,
        basic_auth=credentials,
        api_token=api_token,
        viewer_auth=viewer,
        viewer_token=viewer_token,
        read_only=read_only,
    )
    click.echo(f"celeriac dashboard on http://{host}:{port}/ ({app.describe()})", err=True)
    changes = web.state.dashboard.changes

    class Server(uvicorn.Server):
        """Ends the open live streams (``/live``) as soon as a stop is asked."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            changes.close()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        web, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3
    )
    Server(config).run()
