"""``celeriac [-A APP] COMMAND``: the entry point; commands live in their own modules."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..app import Celeriac
from ..exceptions import CeleriacError
from ..urls import load_object

#: command name -> "module:function" (imported only when the command runs)
COMMANDS = {
    "worker": "celeriac.cli.worker:worker",
    "beat": "celeriac.cli.beat:beat",
    "call": "celeriac.cli.tasks:call",
    "result": "celeriac.cli.tasks:result",
    "purge": "celeriac.cli.tasks:purge",
    "demo": "celeriac.cli.demo:demo",
    "status": "celeriac.cli.inspect:status",
    "inspect": "celeriac.cli.inspect:inspect",
    "control": "celeriac.cli.control:control",
    "events": "celeriac.cli.events:events",
    "queues": "celeriac.cli.queues:queues",
    "dead-letters": "celeriac.cli.queues:dead_letters",
    "dashboard": "celeriac.cli.dashboard:dashboard",
    "shell": "celeriac.cli.shell:shell",
    "report": "celeriac.cli.shell:report",
    "multi": "celeriac.cli.multi:multi",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        spec = COMMANDS.get(name)
        if spec is None:
            return None
        return load_object(spec)  # type: ignore[no-any-return]


def load_app(spec: str | None) -> Any:
    """Find the app: ``proj``, ``proj.module``, ``proj.module:app``."""
    if spec is None:
        raise click.UsageError("this command needs an app: pass -A/--app module[:attribute]")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    candidates = (
        [spec]
        if ":" in spec
        else [spec, f"{spec}.celeriac:app", f"{spec}:app", f"{spec}:celeriac", f"{spec}.celery:app"]
    )
    last: Exception | None = None
    for candidate in candidates:
        try:
            obj = load_object(candidate) if ":" in candidate else None
        except (CeleriacError, AttributeError, ImportError) as exc:
            last = exc
            continue
        if isinstance(obj, Celeriac):
            obj.import_modules()
            return obj
    if ":" not in spec:
        module = load_object(spec)
        found = [v for v in vars(module).values() if isinstance(v, Celeriac)]
        if found:
            found[0].import_modules()
            return found[0]
    raise click.UsageError(f"no celeriac app found at {spec!r}: {last or 'no Celeriac instance'}")


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-A", "--app", "app_spec", envvar="CELERIAC_APP", help="module[:attribute] of the app"
)
@click.pass_context
def cli(ctx: click.Context, app_spec: str | None) -> None:
    """celeriac: a distributed task queue that loses nothing."""
    given = ctx.obj or {}  # start_app() hands the app itself
    ctx.obj = {**given, "app_spec": app_spec}


def app_from(ctx: click.Context) -> Any:
    """The app named by -A, loaded once per command."""
    root = ctx.find_root()
    if "app" not in root.obj:
        root.obj["app"] = load_app(root.obj["app_spec"])
    return root.obj["app"]


def start_app(app: Celeriac, argv: list[str]) -> None:
    """Run a ``celeriac`` command with ``app`` (``app.start()``, ``app.worker_main()``)."""
    app.import_modules()
    try:
        cli.main(args=argv, obj={"app": app}, prog_name="celeriac", standalone_mode=True)
    except CeleriacError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except CeleriacError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
