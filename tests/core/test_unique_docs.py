"""docs/unique.md's Python examples run as written, in order, on a memory broker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOC = Path(__file__).parents[2] / "docs" / "unique.md"


def test_the_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 3
    namespace: dict[str, Any] = {"__name__": "shop"}
    try:
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
        app = namespace["app"]
        assert app.broker.stats("celeriac").total_waiting == 3  # charge, two sync_customer
        assert app.broker.stats("celeriac").delayed == 3  # the debounced sends
    finally:
        namespace["app"].close()
