"""docs/beat.md's Python examples run as written, in order, on a fresh SQLite file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).parents[2] / "docs" / "beat.md"


def test_the_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the examples' broker is sqlite:///celeriac.sqlite3, here
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 3
    namespace: dict[str, Any] = {"__name__": "proj"}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    app = namespace["app"]
    app.import_modules()  # what `celeriac -A proj beat` does: on_after_configure fires
    names = set(app.conf.beat_schedule)
    assert {"say hello every 10", "proj.say('Happy Mondays!')", "weekday-mornings"} <= names
    statuses, _lease = namespace["statuses"], namespace["lease"]
    listed = {s.entry.name: s for s in statuses}
    assert "cleanup-every-30s" not in listed  # removed at runtime
    assert listed["poll-feeds"].entry.kwargs == {"source": "rss"}
    assert listed["weekday-mornings"].entry.paused is False
    assert listed["weekday-mornings"].entry.catch_up == "skip"
    app.close()
