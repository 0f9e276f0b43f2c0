"""How many threads one decode may use: the thread policy, decided here and nowhere else.

A decode may use the cores this process may run on (its CPU affinity, capped by a
cgroup v2/v1 CPU quota), divided among the decoders running at once: the processes
sharing the machine (DataLoader workers, ``run_jobs`` pool processes, Dask workers
on one host) times the decodes running in this process (prefetch or URL threads).
Inside a DataLoader worker or a job process that is one thread unless cores are
left over; a notebook, ``read_xray`` or a ``num_workers=0`` loop gets every core.
``DecodeConfig(threads=...)`` overrides it.  Threads never change the pixels.

Which decoders can use threads (``python -m benchmarks.bench_archive`` measures what they gain, in its
``archive_threads`` table):

* imagecodecs' OpenJPEG (JPEG 2000, ``numthreads``) and libjxl (JPEG XL, ``numthreads``).

They cannot: Pillow's OpenJPEG (the opt-in reduced-resolution path: its only knob is
the process-wide ``OPJ_NUM_THREADS`` environment variable, which OpenJPEG also reads
under imagecodecs, where it overrides ``numthreads=1``, and which every child process
inherits: setting it would oversubscribe DataLoader workers, so it is never set
here), libjpeg-turbo (JPEG), CharLS (JPEG-LS), OpenJPH (HTJ2K, no thread option in
imagecodecs), the RLE decoder, native samples, pydicom's plugins.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

__all__ = ["available_cores", "cgroup_cpu_limit", "decode_threads", "running_decoder", "share_cores"]

_lock = threading.Lock()
_running = 0  # decodes running in this process right now
_processes: int | None = None  # decoding processes sharing this machine, set by a job process's initialiser


def share_cores(processes: int) -> None:
    """Declare this process one of ``processes`` that decode at once on this machine.

    The initialiser of job pool processes (``run_jobs``) and of Dask shard tasks calls it;
    ``0`` forgets the declaration.
    """
    global _processes
    _processes = max(0, int(processes)) or None


def cgroup_cpu_limit(root: str | os.PathLike[str] = "/sys/fs/cgroup",
                     membership: str | os.PathLike[str] = "/proc/self/cgroup") -> int | None:
    """The CPU quota of this process's cgroup in whole cores (rounded up), or ``None`` when unlimited.

    cgroup v2: ``cpu.max`` (``"<quota> <period>"`` or ``"max <period>"``) of the process's group
    and its parents; cgroup v1: ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` of the ``cpu``
    controller.  The smallest limit on the way to the root wins.
    """
    base = Path(root)
    try:
        lines = Path(membership).read_text().splitlines()
    except OSError:
        lines = []
    limits: list[float] = []
    for line in lines:
        _id, controllers, rel = (line.split(":", 2) + ["", ""])[:3]
        rel = rel.strip().lstrip("/")
        if controllers == "":  # v2 unified hierarchy
            limits += _walk(base, rel, lambda d: _v2_quota(d / "cpu.max"))
        elif "cpu" in controllers.split(","):
            for name in (controllers, "cpu", "cpu,cpuacct"):
                if (base / name).is_dir():
                    limits += _walk(base / name, rel, _v1_quota)
                    break
    if not lines:
        limits += [q for q in (_v2_quota(base / "cpu.max"), _v1_quota(base / "cpu")) if q is not None]
    return max(1, math.ceil(min(limits))) if limits else None


def _walk(base: Path, rel: str, read: Callable[[Path], float | None]) -> list[float]:
    parts = [p for p in rel.split("/") if p]
    found: list[float] = []
    for depth in range(len(parts) + 1):
        q = read(base.joinpath(*parts[:depth]))
        if q is not None:
            found.append(q)
    return found


def _v2_quota(path: Path) -> float | None:
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" or float(period) <= 0 else float(quota) / float(period)
    except (OSError, ValueError):
        return None


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = float((folder / "cpu.cfs_quota_us").read_text())
        period = float((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


@cache
def _quota() -> int | None:
    return cgroup_cpu_limit()


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by its cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _quota()
    return max(1, min(cores, quota) if quota else cores)


def _local_ranks() -> int:
    """Training processes on this node (torchrun's ``LOCAL_WORLD_SIZE``; 1 outside a distributed launch)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def _sharing_processes() -> int:
    """Processes decoding at once on this machine: a job pool's declaration, else DataLoader workers (times the
    ranks torchrun started on this node), else the ranks."""
    if _processes:
        return _processes
    data = sys.modules.get("torch.utils.data")  # never import torch here: only ask when it is already loaded
    info = data.get_worker_info() if data is not None else None
    workers = max(1, int(info.num_workers)) if info is not None else 1
    return workers * _local_ranks()


def decode_threads(requested: int | None = None) -> int:
    """Threads the next decode in this process may use.

    Parameters
    ----------
    requested : int, optional
        ``DecodeConfig.threads``: used as given.  ``None`` applies the policy:
        ``available_cores() // (sharing processes * decodes running here)``, at least 1.
    """
    if requested:
        return requested
    return max(1, available_cores() // (_sharing_processes() * max(1, _running)))


@contextmanager
def running_decoder() -> Iterator[None]:
    """Count one decode as running in this process while the block runs."""
    global _running
    with _lock:
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
