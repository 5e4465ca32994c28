from tests.e2e.workers import start_worker
from tests.worker.fixtures import sandbox

__all__ = ["sandbox", "start_worker"]
