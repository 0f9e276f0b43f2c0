"""Batch jobs over many files through the one pipeline: PNG/JPEG export and cache builds."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from ._atomic import atomic_write
from ._cache import XrayCache
from .config import CacheConfig, PipelineConfig
from .errors import DicomXrayError
from .pipeline import Pipeline

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["ExportResult", "build_cache", "export_folder", "run_jobs", "write_image_atomic"]


@dataclass(frozen=True)
class ExportResult:
    source: str
    target: str
    status: str  # "written", "skipped" (up to date), "failed"
    error: str = ""


def write_image_atomic(array: np.ndarray, target: Path, fmt: str, quality: int = 95) -> None:
    """Write ``array`` as PNG/JPEG to ``target`` atomically (never a partial file)."""
    if array.dtype == np.uint16 and fmt != "png":
        raise ValueError("16-bit output needs --format png")
    im = Image.fromarray(array)
    with atomic_write(target) as fh:
        if fmt == "png":
            im.save(fh, format="PNG", compress_level=1)
        else:
            im.save(fh, format="JPEG", quality=quality)


def run_jobs(fn: Callable[[T], R], items: Sequence[T], *, workers: int, desc: str, progress: bool) -> list[R]:
    """``[fn(x) for x in items]`` in order, in ``workers`` processes (in-process for <= 1), with a progress bar."""
    from tqdm import tqdm

    with tqdm(total=len(items), unit="img", desc=desc, disable=not progress) as bar:
        if workers <= 1:
            results = []
            for item in items:
                results.append(fn(item))
                bar.update()
            return results
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = []
            for result in pool.map(fn, items, chunksize=max(1, min(64, len(items) // (workers * 8)))):
                results.append(result)
                bar.update()
            return results


def export_one(job: tuple[str, str], *, fmt: str, config: PipelineConfig, overwrite: bool) -> ExportResult:
    """Render ``job = (source, target)`` and write the target; an up-to-date target is skipped."""
    source, target = job
    src, dst = Path(source), Path(target)
    try:
        if not overwrite and dst.exists() and dst.stat().st_mtime_ns >= src.stat().st_mtime_ns:
            return ExportResult(source, target, "skipped")
        write_image_atomic(Pipeline(config).read(src).pixels, dst, fmt)
        return ExportResult(source, target, "written")
    except (DicomXrayError, OSError, ValueError) as exc:
        return ExportResult(source, target, "failed", str(exc))


def export_folder(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    fmt: str = "png",
    config: PipelineConfig | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> list[ExportResult]:
    """Render every DICOM under ``source`` to ``target``, mirroring the folder tree.

    ``a/b/c.dcm`` becomes ``target/a/b/c.png``.  Files are written atomically;
    targets newer than their source are skipped unless ``overwrite``.  A bad
    file does not stop the run: its result has ``status="failed"`` and the
    error text names it.
    """
    from .index import find_dicoms, image_id

    if fmt not in ("png", "jpg"):
        raise ValueError(f"fmt must be 'png' or 'jpg', got {fmt!r}")
    src = Path(source)
    files = find_dicoms(src)
    base = src if src.is_dir() else src.parent
    dst = Path(target)
    jobs = [(str(f), str(dst / f.relative_to(base).parent / f"{image_id(f)}.{fmt}")) for f in files]
    fn = partial(export_one, fmt=fmt, config=config or PipelineConfig(), overwrite=overwrite)
    return run_jobs(fn, jobs, workers=workers, desc="export", progress=progress)


def _cache_one(source: str, cache: CacheConfig, config: PipelineConfig) -> ExportResult:
    store = XrayCache(cache)
    try:
        store.load(source, config)
    except DicomXrayError as exc:
        return ExportResult(source, cache.directory, "failed", str(exc))
    return ExportResult(source, cache.directory, "skipped" if store.stats.hits else "written")


def build_cache(
    files: Sequence[str],
    cache: str | os.PathLike[str] | CacheConfig,
    *,
    config: PipelineConfig | None = None,
    shard: tuple[int, int] = (1, 1),
    workers: int = 1,
    progress: bool = True,
) -> list[ExportResult]:
    """Fill the cache for ``files`` (the ``k``-th of ``n`` shards, counting from 1: ``files[k - 1::n]``).

    Status ``written`` for new entries, ``skipped`` for entries already
    there, ``failed`` (with the error) for bad files.  Any job runner can run
    the shards in parallel: writes are atomic and keys never collide.
    """
    k, n = shard
    if not 1 <= k <= n:
        raise ValueError(f"shard must be k/n with 1 <= k <= n, got {k}/{n}")
    cache_config = cache if isinstance(cache, CacheConfig) else CacheConfig(directory=os.fspath(cache))
    fn = partial(_cache_one, cache=cache_config, config=config or PipelineConfig())
    return run_jobs(fn, list(files)[k - 1 :: n], workers=workers, desc=f"cache {k}/{n}", progress=progress)
