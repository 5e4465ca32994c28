from tests.e2e.workers import start_worker

__all__ = ["start_worker"]
