"""Hardening runners: ``tests/test_hardening.py`` calls them with small counts, ``benchmarks/stress.py`` with large.

* :func:`kill_cache_build_and_export` SIGKILLs ``cache build`` and ``export`` at random moments
  (:func:`kill_randomly`), then checks every cache entry and PNG they left behind.
* :func:`share_one_cache` runs several processes filling and reading one cache at once.
* :func:`memory_bomb` reads a file declaring 65535 x 65535 x 1000 frames in a child process.

Fuzzing is in :mod:`dicomxray.testing._fuzz`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import uid

from ._synth import chest_phantom, write_dicom

__all__ = ["BombReport", "KillReport", "ShareReport", "kill_cache_build_and_export", "kill_randomly", "memory_bomb",
           "share_one_cache"]


def kill_randomly(cmds: Sequence[Sequence[str]], rng: random.Random, delay: tuple[float, float] = (0.1, 0.6)) -> int:
    """Start each command in turn and SIGKILL it after a random delay, unless it finished first.

    Returns
    -------
    int
        How many were killed.
    """
    killed = 0
    for cmd in cmds:
        proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(*delay))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
    return killed


@dataclass
class KillReport:
    """What :func:`kill_cache_build_and_export` left behind; ``wrong_*`` name the files whose pixels differ."""

    src: Path
    cache_dir: Path
    png_dir: Path
    runs: int
    killed: int
    entries: int
    corrupt_entries: int
    wrong_entries: list[str]
    pngs: int
    wrong_pngs: list[str]


def kill_cache_build_and_export(work: str | os.PathLike[str], rounds: int, rng: random.Random, *, files: int = 24,
                                shape: tuple[int, int] = (1000, 1000), size: int = 64) -> KillReport:
    """SIGKILL ``dicomxray cache build`` and ``dicomxray export`` at random moments, then check what is left.

    Each round runs a cache build at a new size (``size + round``, so every round has real work to be killed
    in) and an export at ``size``; then every cache entry is verified (CRC) and compared with ``read_xray``, and
    so is every PNG.

    Parameters
    ----------
    work : path-like
        Scratch folder: ``kill_src/`` (``files`` JPEG-LS phantoms of ``shape``), ``kill_cache/``, ``kill_png/``.
    rounds : int
        Rounds of two commands each.
    rng : random.Random
        Draws the moments.

    Returns
    -------
    KillReport
    """
    from PIL import Image

    from dicomxray import XrayCache, pipeline_config, read_xray

    work = Path(work)
    src, cache_dir, png_dir = work / "kill_src", work / "kill_cache", work / "kill_png"
    for i in range(files):
        write_dicom(src / f"{i:02d}.dcm", chest_phantom(*shape, bits=12, seed=i), bits_stored=12, syntax=uid.JPEGLSLossless)
    exe = [sys.executable, "-m", "dicomxray"]
    cmds = []
    for r in range(rounds):
        cmds.append([*exe, "cache", "build", str(src), "--cache-dir", str(cache_dir), "--size", str(size + r), "--quiet"])
        cmds.append([*exe, "export", str(src), str(png_dir), "--size", str(size), "--quiet", "--workers", "1",
                     "--overwrite"])
    killed = kill_randomly(cmds, rng)
    cache = XrayCache(cache_dir, check_crc=True)
    verify = cache.verify(remove=False)
    wrong = []
    for f in sorted(src.glob("*.dcm")):
        got = cache.get(f, pipeline_config(size=size))
        if got is not None and not np.array_equal(got.pixels, read_xray(f, size)):
            wrong.append(f.name)
    pngs = sorted(png_dir.glob("*.png"))
    wrong_pngs = [p.name for p in pngs
                  if not np.array_equal(np.asarray(Image.open(p)), read_xray(src / f"{p.stem}.dcm", size))]
    return KillReport(src, cache_dir, png_dir, len(cmds), killed, verify["ok"] + verify["corrupt"], verify["corrupt"],
                      wrong, len(pngs), wrong_pngs)


@dataclass
class ShareReport:
    """What :func:`share_one_cache` saw: ``bad`` counts wrong or corrupt reads per process."""

    cache_dir: Path
    processes: int
    reads_per_process: int
    bad: list[int]


def share_one_cache(work: str | os.PathLike[str], processes: int, *, files: int = 20,
                    shape: tuple[int, int] = (400, 400), size: int = 48) -> ShareReport:
    """Several processes fill and read one cache at once, each over the files twice in its own order.

    Parameters
    ----------
    work : path-like
        Scratch folder: ``conc_src/`` (``files`` phantoms of ``shape``) and ``conc_cache/``.
    processes : int
        Concurrent processes.
    size : int
        Output size read and cached.

    Returns
    -------
    ShareReport
    """
    work = Path(work)
    src, cache_dir = work / "conc_src", work / "conc_cache"
    for i in range(files):
        write_dicom(src / f"{i}.dcm", chest_phantom(*shape, bits=12, seed=i), bits_stored=12)
    with ProcessPoolExecutor(processes) as pool:
        bad = list(pool.map(_read_and_check, [(str(src), str(cache_dir), size, s) for s in range(processes)]))
    return ShareReport(cache_dir, processes, 2 * files, bad)


def _read_and_check(args: tuple[str, str, int, int]) -> int:
    """One process of :func:`share_one_cache`: wrong reads plus corrupt entries met."""
    from dicomxray import XrayCache, pipeline_config, read_xray

    src, cache_dir, size, seed = args
    files = sorted(os.path.join(src, f) for f in os.listdir(src))
    random.Random(seed).shuffle(files)
    cache = XrayCache(cache_dir, check_crc=True)
    cfg = pipeline_config(size=size)
    bad = 0
    for f in files * 2:
        bad += not np.array_equal(cache.load(f, cfg).pixels, read_xray(f, size))
    return bad + cache.stats.corrupt


@dataclass
class BombReport:
    """What :func:`memory_bomb` saw."""

    path: Path
    declared_bytes: int
    refused: bool
    rss_growth_kb: int


_BOMB_CHILD = """import resource, sys
from dicomxray import ImageTooLargeError, read_xray
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_xray(sys.argv[1])
except ImageTooLargeError:
    print("refused")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def memory_bomb(work: str | os.PathLike[str], *, timeout: float = 120.0) -> BombReport:
    """Write ``work/bomb.dcm`` declaring 65535 x 65535 x 1000 16-bit frames (8 TB) and read it in a child process.

    Returns
    -------
    BombReport
        Whether ``ImageTooLargeError`` refused it, and how much the child's peak RSS grew (KiB).

    Raises
    ------
    RuntimeError
        The child failed (any other exception, or killed).
    """
    import pydicom

    path = write_dicom(Path(work) / "bomb.dcm", np.zeros((8, 8), np.uint16))
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 1000
    ds.save_as(path)
    r = subprocess.run([sys.executable, "-c", _BOMB_CHILD, str(path)], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"reading the memory bomb failed (exit {r.returncode}): {r.stderr[-2000:]}")
    words = r.stdout.split()
    return BombReport(path, 65535 * 65535 * 1000 * 2, "refused" in words, int(words[-1]))
