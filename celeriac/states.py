"""Task states, as Celery names them."""

from __future__ import annotations

PENDING = "PENDING"  # unknown to the backend: waiting, or never sent
RECEIVED = "RECEIVED"  # a worker holds the message
STARTED = "STARTED"  # a worker is running it
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
RETRY = "RETRY"  # failed an attempt; another is scheduled
REVOKED = "REVOKED"  # revoked or expired before it finished
IGNORED = "IGNORED"  # the task raised Ignore: nothing is stored, the message is acked

READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
UNREADY_STATES = frozenset({PENDING, RECEIVED, STARTED, RETRY})
EXCEPTION_STATES = frozenset({FAILURE, RETRY, REVOKED})
ALL_STATES = READY_STATES | UNREADY_STATES
