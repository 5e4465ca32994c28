"""An app for the CLI tests: an in-process memory broker, shared with fake workers."""

from celeriac import Celeriac

app = Celeriac(
    "control-cli",
    broker="memory://control-cli",
    backend="memory://control-cli",
    set_as_current=False,
)


@app.task(name="cli.add")
def add(a: int, b: int) -> int:
    return a + b
