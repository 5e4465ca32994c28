"""The worker: a supervisor, its pool of consumers, and how one message is run."""
