"""Typed tasks, as the type checkers see them: ``typed_uses.py`` checked by mypy --strict
and by pyright. Each line marked ``# expect-error`` must be reported, and nothing else."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.needs import missing

USES = Path(__file__).with_name("typed_uses.py")
ROOT = USES.parents[2]
_MARKER = re.compile(r"#\s*expect-error\s*$")


def _expected_lines() -> set[int]:
    lines = USES.read_text().splitlines()
    return {n for n, line in enumerate(lines, 1) if _MARKER.search(line)}


def _reported_lines(output: str, pattern: str) -> set[int]:
    return {int(m.group(1)) for m in re.finditer(pattern, output, re.MULTILINE)}


def _compare(checker: str, reported: set[int], output: str) -> None:
    expected = _expected_lines()
    assert len(expected) > 20, "the marked lines of typed_uses.py were not found"
    missed, unexpected = sorted(expected - reported), sorted(reported - expected)
    assert (missed, unexpected) == ([], []), (
        f"{checker}: marked lines it accepted {missed}, other lines it reported {unexpected}\n"
        f"{output}"
    )


def test_mypy_strict_reports_each_wrong_use_and_nothing_else(tmp_path: Path) -> None:
    # Given typed_uses.py, when mypy --strict checks it
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--warn-unused-ignores",
            "--no-pretty",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            str(USES.relative_to(ROOT)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode in (0, 1), output  # 2: mypy itself failed
    # Expect exactly the marked lines reported
    name = re.escape(str(USES.relative_to(ROOT)))
    _compare("mypy", _reported_lines(output, rf"^{name}:(\d+): error:"), output)


def test_pyright_reports_each_wrong_use_and_nothing_else() -> None:
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent))
    if pyright is None:
        missing("pyright is not installed: pip install 'celeriac[test]'")
    # Given typed_uses.py, when pyright checks it with this interpreter's packages
    done = subprocess.run(
        [pyright, "--pythonpath", sys.executable, str(USES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    if done.returncode not in (0, 1):
        pytest.fail(f"pyright did not run:\n{output}")
    # Expect exactly the marked lines reported (errors; its warnings do not count)
    pattern = rf"^\s*{re.escape(str(USES))}:(\d+):\d+ - error:"
    _compare("pyright", _reported_lines(output, pattern), output)


def test_py_typed_ships_with_the_package() -> None:
    # PEP 561: without the marker, type checkers ignore celeriac's annotations
    import tomllib

    import celeriac

    assert (Path(celeriac.__file__).parent / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["celeriac"]
