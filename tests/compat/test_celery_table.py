"""docs/coming-from-celery.md's table of Celery's settings, task options, signals and
commands says what the code does: *yes* and *differently* name what celeriac knows,
*no* names what it does not (and a *no* setting gets the nearest-name warning)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from celeriac import Celeriac, signals
from celeriac.cli.main import COMMANDS
from celeriac.config import SETTINGS, UNNECESSARY, ConfigWarning
from celeriac.task import TASK_OPTIONS

DOC = Path(__file__).parents[2] / "docs" / "coming-from-celery.md"
#: Described with another command's own issue (periodic tasks).
ELSEWHERE = {"beat"}


def _section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"### {title}\n", text.index("## Every setting"))
    end = text.find("\n### ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _rows(title: str) -> dict[str, set[str]]:
    """status -> names of the table under ``### title``; wildcard groups left out."""
    found: dict[str, set[str]] = {"yes": set(), "differently": set(), "no": set()}
    for line in _section(title).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[1] not in found:
            continue
        names = re.findall(r"`([^`]+)`", cells[0])
        found[cells[1]].update(n for n in names if "*" not in n)
    return found


def test_the_settings_table_matches_the_known_settings() -> None:
    rows = _rows("Settings")
    known = set(SETTINGS) | set(UNNECESSARY)
    assert rows["yes"] <= set(SETTINGS), rows["yes"] - set(SETTINGS)
    assert rows["differently"] <= known, rows["differently"] - known
    assert not rows["no"] & known, rows["no"] & known
    assert set(UNNECESSARY) <= rows["differently"], set(UNNECESSARY) - rows["differently"]
    section = _section("Settings")
    missing = {n for n in SETTINGS if f"`{n}`" not in section and not n.startswith("beat_")}
    assert not missing, f"settings the table does not mention: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(_rows("Settings")["no"]))
def test_an_unsupported_celery_setting_gets_the_nearest_name_warning(name: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Celeriac("t", broker="memory://", set_as_current=False, **{name: 1})
    messages = [str(w.message) for w in caught if issubclass(w.category, ConfigWarning)]
    assert messages and messages[0].startswith(f"unknown setting {name!r}"), messages


def test_the_task_options_table_matches_the_known_options() -> None:
    rows = _rows("Task options")
    known = set(TASK_OPTIONS) | {"base"}
    assert rows["yes"] | rows["differently"] <= known
    assert not rows["no"] & known
    assert known <= rows["yes"] | rows["differently"], known - rows["yes"] - rows["differently"]


def test_the_signals_table_matches_the_signals_sent() -> None:
    rows = _rows("Signals")
    defined = {n for n, v in vars(signals).items() if isinstance(v, signals.Signal)}
    supported = rows["yes"] | rows["differently"]
    app = Celeriac("t", broker="memory://", set_as_current=False)
    for name in supported:
        if name.startswith("app."):
            assert isinstance(getattr(app, name[4:]), signals.Signal), name
    assert {n for n in supported if not n.startswith("app.")} == defined
    for name in rows["no"]:
        target = app if name.startswith("app.") else signals
        assert not hasattr(target, name.removeprefix("app.")), name


def test_the_commands_table_matches_the_commands() -> None:
    rows = _rows("Commands")
    assert (rows["yes"] | rows["differently"]) - ELSEWHERE <= set(COMMANDS)
    assert not rows["no"] & set(COMMANDS)
