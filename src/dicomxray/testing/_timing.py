"""An interleaved timer: what ``dicomxray bench`` and the benchmark scripts time with."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["interleaved"]


def interleaved(cases: dict[str, Callable[[], Any]], repeat: int, warmup: int = 1) -> dict[str, dict[str, float]]:
    """Run every case in turn (A B C A B C ...) ``repeat`` times; medians of wall and CPU milliseconds.

    Interleaving spreads the noise of a shared machine evenly over the cases.  CPU time is the process's
    (:func:`time.process_time`: every thread of it), so it is the per-core cost when each case runs on one
    thread, and exceeds the wall time of a case whose libraries use several.

    Parameters
    ----------
    cases : dict of str to callable
        What to time, by name; each is called without arguments.
    repeat : int
        Timed rounds.
    warmup : int
        Untimed rounds first (caches, lazy imports).

    Returns
    -------
    dict
        ``{name: {"wall_ms": median, "cpu_ms": median}}``.
    """
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    wall: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append((time.perf_counter() - t0) * 1e3)
            cpu[name].append((time.process_time() - c0) * 1e3)
    return {k: {"wall_ms": statistics.median(wall[k]), "cpu_ms": statistics.median(cpu[k])} for k in cases}
