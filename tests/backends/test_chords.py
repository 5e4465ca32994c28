"""The chord join: a counter in the backend that completes exactly once."""

from __future__ import annotations

import random
import threading
import uuid

from .env import BackendEnv
from .helpers import SPAWN, report_parts


def test_the_last_part_completes_the_chord_once(env: BackendEnv) -> None:
    backend = env.connect()
    group_id = uuid.uuid4().hex

    results = [backend.chord_part_done(group_id, i, 3) for i in (0, 1, 1, 0, 2, 2, 1)]

    assert results == [False, False, False, False, True, False, False]


def test_chords_are_counted_separately(env: BackendEnv) -> None:
    backend = env.connect()
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    assert backend.chord_part_done(first, 0, 2) is False
    assert backend.chord_part_done(second, 0, 1) is True
    assert backend.chord_part_done(first, 1, 2) is True


def _shuffled_parts_with_repeats(size: int, workers: int) -> list[list[int]]:
    """Every index once, plus redeliveries of some, dealt out to ``workers``."""
    parts = list(range(size)) + random.sample(range(size), size // 3)
    random.shuffle(parts)
    return [parts[i::workers] for i in range(workers)]


def test_concurrent_threads_complete_a_chord_exactly_once(env: BackendEnv) -> None:
    size, group_id = 60, uuid.uuid4().hex
    shares = _shuffled_parts_with_repeats(size, 4)
    barrier = threading.Barrier(len(shares))
    completed: list[int] = []

    def report(share: list[int]) -> None:
        backend = env.connect()
        backend.get("connect")
        barrier.wait(10)
        completed.extend(i for i in share if backend.chord_part_done(group_id, i, size))

    threads = [threading.Thread(target=report, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(completed) == 1


def test_concurrent_processes_complete_a_chord_exactly_once(process_env: BackendEnv) -> None:
    size, group_id = 60, uuid.uuid4().hex
    shares = _shuffled_parts_with_repeats(size, 3)
    go, out = SPAWN.Event(), SPAWN.Queue()
    procs = [
        SPAWN.Process(target=report_parts, args=(process_env, group_id, share, size, go, out))
        for share in shares
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            assert out.get(timeout=60) is None  # connected
        go.set()
        completed = [i for _ in procs for i in out.get(timeout=60)]
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()

    assert len(completed) == 1
    assert all(proc.exitcode == 0 for proc in procs)
