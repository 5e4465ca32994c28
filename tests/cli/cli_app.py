"""An app for the CLI tests: in-process memory broker and results."""

from celeriac import Celeriac

app = Celeriac("cli", broker="memory://cli", backend="memory://cli")


@app.task
def add(a: int, b: int) -> int:
    return a + b
