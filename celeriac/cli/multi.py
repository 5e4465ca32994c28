"""``celeriac multi start|stop|restart|kill|show NAMES [WORKER OPTIONS]``: several
detached workers, each with a pid file and a log file, as ``celery multi`` runs them.

``NAMES`` are node names (``w1``, ``w1@host``) or a count (``3``: ``celeriac1`` to
``celeriac3``). Options after the names go to each worker, except ``--pidfile``
(default ``%n.pid``) and ``--logfile`` (default ``%n%I.log``), in which ``%n`` is
the node's short name, ``%h`` its full name and ``%I`` empty (the children of a
prefork worker share its log). ``stop`` waits for each worker's warm shutdown
(``stopwait`` is the same); ``kill`` does not wait.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

STOP_TIMEOUT = 120.0  # seconds a warm shutdown may take before stop gives up


@dataclass(frozen=True)
class Node:
    """One worker of ``multi``: its name and files."""

    name: str  # w1@host
    pidfile: Path
    logfile: Path

    @property
    def short(self) -> str:
        return self.name.partition("@")[0]

    def pid(self) -> int | None:
        """The pid in its pid file, when that process is alive."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited: not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _expand(pattern: str, name: str) -> Path:
    return Path(pattern.replace("%n", name.partition("@")[0]).replace("%h", name).replace("%I", ""))


def _take(args: list[str], option: str, default: str | None) -> str | None:
    """Remove ``--option=value`` or ``--option value`` from ``args``; its value."""
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            value = args[i + 1]
            del args[i : i + 2]
            return value
        if arg.startswith(option + "="):
            del args[i]
            return arg.partition("=")[2]
    return default


def parse(arguments: list[str]) -> tuple[list[Node], list[str], str | None]:
    """The nodes named before the first option, the worker's options, and the app when
    given among them (``celery multi start w1 -A proj``)."""
    split = next((i for i, a in enumerate(arguments) if a.startswith("-")), len(arguments))
    names, options = arguments[:split], list(arguments[split:])
    if not names:
        raise click.UsageError("name the workers: celeriac multi start w1 w2 [worker options]")
    if len(names) == 1 and names[0].isdigit():
        names = [f"celeriac{i}" for i in range(1, int(names[0]) + 1)]
    pidfile = _take(options, "--pidfile", "%n.pid") or "%n.pid"
    logfile = _take(options, "--logfile", "%n%I.log") or "%n%I.log"
    app = _take(options, "-A", None) or _take(options, "--app", None)
    host = socket.gethostname()
    nodes = []
    for name in names:
        full = name if "@" in name else f"{name}@{host}"
        nodes.append(Node(full, _expand(pidfile, full), _expand(logfile, full)))
    return nodes, options, app


def _command(node: Node, app_spec: str | None, options: list[str]) -> list[str]:
    app = ["-A", app_spec] if app_spec else []
    return [sys.executable, "-m", "celeriac", *app, "worker", "-n", node.name, *options]


def _start(node: Node, command: list[str]) -> None:
    running = node.pid()
    if running is not None:
        click.echo(f"> {node.name}: already running (pid {running})")
        return
    node.logfile.parent.mkdir(parents=True, exist_ok=True)
    node.pidfile.parent.mkdir(parents=True, exist_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(node.logfile), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    pid = os.posix_spawn(command[0], command, dict(os.environ), file_actions=actions, setsid=True)
    node.pidfile.write_text(f"{pid}\n")
    click.echo(f"> {node.name}: started (pid {pid}, log {node.logfile})")


def _stop(node: Node, signum: int, wait: bool) -> bool:
    pid = node.pid()
    if pid is None:
        click.echo(f"> {node.name}: not running")
        node.pidfile.unlink(missing_ok=True)
        return True
    os.kill(pid, signum)
    deadline = time.monotonic() + STOP_TIMEOUT
    while wait and _alive(pid):
        if time.monotonic() > deadline:
            click.echo(f"> {node.name}: still running after {STOP_TIMEOUT:g}s (pid {pid})")
            return False
        time.sleep(0.05)
    node.pidfile.unlink(missing_ok=True)
    click.echo(f"> {node.name}: {'stopped' if wait else 'signalled'} (pid {pid})")
    return True


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument(
    "action", type=click.Choice(["start", "stop", "stopwait", "restart", "kill", "show"])
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def multi(ctx: click.Context, action: str, arguments: tuple[str, ...]) -> None:
    """Start, stop, restart or show several detached workers with pid and log files."""
    nodes, options, app_spec = parse(list(arguments))
    app_spec = app_spec or ctx.find_root().obj.get("app_spec")
    ok = True
    for node in nodes:
        command = _command(node, app_spec, options)
        if action == "show":
            click.echo(" ".join(command))
        elif action == "start":
            _start(node, command)
        elif action == "kill":
            ok = _stop(node, signal.SIGKILL, wait=False) and ok
        else:
            ok = _stop(node, signal.SIGTERM, wait=True) and ok
            if action == "restart" and ok:
                _start(node, command)
    if not ok:
        ctx.exit(1)
