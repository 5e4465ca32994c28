"""``./scripts/demo`` installs the package alone: no test tools, no apt-get (the plan that
``CELERIAC_SETUP_PLAN=1`` prints, for the demo and for each way of calling setup)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _plan(script: str, *args: str) -> list[str]:
    env = {**os.environ, "CELERIAC_SETUP_PLAN": "1"}
    done = subprocess.run(
        [str(ROOT / "scripts" / script), *args],
        env=env, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return done.stdout.splitlines()


def test_the_demo_installs_only_the_package() -> None:
    plan = _plan("demo")
    assert ".venv/bin/python -m pip install -q -e ." in plan, plan
    assert not [line for line in plan if "[" in line or "apt-get" in line], plan
    assert plan[-1].strip() == ".venv/bin/celeriac demo"


def test_setup_given_extras_installs_them_and_the_test_servers_only_for_test() -> None:
    assert _plan("setup", "") == [
        "python3 -m venv .venv",
        ".venv/bin/python -m pip install -q -e .",
    ]
    assert not [line for line in _plan("setup", "all") if "apt-get" in line]
    tests = _plan("setup")  # no argument: the test toolchain, with its servers
    assert ".venv/bin/python -m pip install -q -e .[test]" in tests
    assert sum("apt-get install" in line for line in tests) == 2
