"""Timing helper shared by the benchmark scripts (no GDAL, so it runs on bare GPU machines)."""

import time


def best_of(fn, reps: int = 3, warmup: bool = True) -> float:
    """Best wall time in seconds of ``reps`` calls of ``fn`` (after one warm-up call)."""
    if warmup:
        fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best
