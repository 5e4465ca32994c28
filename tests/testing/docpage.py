"""The code blocks of docs/testing.md, with the marker that says how each is run."""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from pathlib import Path

EACH_EXAMPLE_WITHIN = 1.0  # seconds: the page promises examples that run in under one
PAGE = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
_BLOCK = re.compile(r"<!-- test: (?P<kind>[^>]*?) -->\n```python\n(?P<code>.*?)^```", re.S | re.M)


@dataclass
class Block:
    kind: str
    code: str
    line: int  # of the block's first line of code in the page

    def compiled(self) -> types.CodeType:
        padded = "\n" * (self.line - 1) + self.code  # so tracebacks name the page's lines
        return compile(padded, str(PAGE), "exec")


def blocks() -> list[Block]:
    text = PAGE.read_text()
    found = [
        Block(m["kind"].strip(), m["code"], text.count("\n", 0, m.start("code")) + 1)
        for m in _BLOCK.finditer(text)
    ]
    assert len(found) == text.count("```python"), "a ```python block of the page has no marker"
    return found
