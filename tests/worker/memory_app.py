"""An app on the in-process memory broker, for command-line checks."""

from celeriac import Celeriac

app = Celeriac("memory_app", broker="memory://worker-cli", backend="memory://worker-cli")
