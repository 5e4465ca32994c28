"""The layering holds at run time: ``import celeriac`` loads the core and nothing else.

The import-linter contracts in pyproject.toml check the imports written in the
code; this checks what a fresh interpreter actually loads, dotted-path loading
included.
"""

from __future__ import annotations

import ast
import subprocess
import sys

#: packages of celeriac that sit above the core, and the engines the URL registries load
OUTSIDE_THE_CORE = {"cli", "contrib", "dashboard", "demo", "rabbitmq", "redis", "sql", "sqlite"}
#: the optional client libraries and frameworks the engines and integrations import
OPTIONAL_LIBRARIES = {"django", "hiredis", "msgpack", "pika", "redis", "sqlalchemy", "starlette"}

_PROBE = (
    "import celeriac, sys; "
    "print(sorted(m for m in sys.modules if m.startswith('celeriac.'))); "
    "print(sorted({m.partition('.')[0] for m in sys.modules}))"
)


def test_import_celeriac_loads_no_engine_contrib_dashboard_or_cli() -> None:
    # Given a fresh interpreter, when it imports celeriac
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    celeriac_modules, top_level = (ast.literal_eval(line) for line in done.stdout.splitlines())
    # Expect the core only, and no optional library
    assert "celeriac.app" in celeriac_modules
    assert [m for m in celeriac_modules if m.split(".")[1] in OUTSIDE_THE_CORE] == []
    assert sorted(OPTIONAL_LIBRARIES & set(top_level)) == []
