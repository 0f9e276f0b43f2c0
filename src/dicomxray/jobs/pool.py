"""The one local process pool of every batch job (export, cache build, index), and the one default count.

:func:`worker_count` answers "how many processes?" for every caller that was not told (the CLI's defaults,
``workers=None``): the cores this process may run on, its CPU affinity capped by its cgroup quota
(:func:`dicomxray.pixels.decode._threads.available_cores`, the answer the decode thread policy uses too).
An explicit count is the caller's.  :func:`run_jobs` runs ``fn`` over items in that many processes, in
chunks sized by one rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import TypeVar

from ..pixels.decode._threads import available_cores, share_cores
from .distributed import run_chunk

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["chunk_size", "run_jobs", "worker_count"]

#: Most items in one chunk a pool process is handed (per thread it runs them on): small enough to balance
#: and to keep the progress bar moving, large enough that hand-offs cost nothing next to the work.
_CHUNK = 64


def worker_count(workers: int | None, items: int | None = None, *, pool_min: int = 1) -> int:
    """The processes a job over ``items`` items runs in.

    Parameters
    ----------
    workers : int or None
        The caller's count, used as given (0 or 1: this process).  ``None``: :func:`available_cores`
        (CPU affinity and cgroup quota), no more than ``items``, and this process alone below
        ``pool_min`` items (a pool's start costs more than it saves there).
    items : int, optional
        Items to run (unknown: not capped).
    pool_min : int
        With ``workers=None``, the fewest items worth a pool.

    Returns
    -------
    int
        At least 1.

    Raises
    ------
    ValueError
        ``workers`` is not an integer >= 0.
    """
    if workers is None:
        if items is not None and items < pool_min:
            return 1
        return max(1, min(available_cores(), items) if items is not None else available_cores())
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ValueError(f"workers must be an integer >= 0 (0 or 1: in this process), got {workers!r}")
    return max(1, workers)


def chunk_size(items: int, workers: int, threads: int = 1) -> int:
    """Items per chunk: about eight chunks per process (so a slow chunk does not leave the others idle),
    at most :data:`_CHUNK` per thread."""
    return max(1, min(_CHUNK * max(1, threads), items // (max(1, workers) * 8)))


def run_jobs(fn: Callable[[T], R], items: Sequence[T], *, workers: int | None, desc: str, progress: bool,
             threads: int = 1, unit: str = "img") -> list[R]:
    """``[fn(x) for x in items]`` in order, in :func:`worker_count` ``(workers)`` processes (this one for <= 1),
    with a progress bar; each process runs ``threads`` items at once (for URLs, which wait on the network)."""
    from tqdm import tqdm

    n = worker_count(workers, len(items))
    with tqdm(total=len(items), unit=unit, desc=desc, disable=not progress, dynamic_ncols=True) as bar:
        if n <= 1 and threads <= 1:
            results = []
            for item in items:
                results.append(fn(item))
                bar.update()
            return results
        chunk = chunk_size(len(items), n, threads)
        chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
        results = []
        if n <= 1:
            for part in chunks:
                results.extend(run_chunk(fn, part, threads))
                bar.update(len(part))
            return results
        # each pool process decodes beside n - 1 others: the thread policy divides the cores among them
        with ProcessPoolExecutor(max_workers=n, initializer=share_cores, initargs=(n,)) as pool:
            for finished in pool.map(partial(run_chunk, fn, threads=threads), chunks):
                results.extend(finished)
                bar.update(len(finished))
            return results
