"""Batch jobs over folders through the one pipeline: PNG/JPEG export and cache builds."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ._atomic import atomic_write
from .config import PipelineConfig
from .errors import DicomXrayError
from .xray import read_xray

__all__ = ["ExportResult", "build_cache", "export_folder", "write_image_atomic"]


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


def export_one(source: str, target: str, fmt: str, config: PipelineConfig, overwrite: bool) -> ExportResult:
    """Render ``source`` and write it to ``target``; an up-to-date target is skipped."""
    src, dst = Path(source), Path(target)
    try:
        if not overwrite and dst.exists() and dst.stat().st_mtime_ns >= src.stat().st_mtime_ns:
            return ExportResult(source, target, "skipped")
        pixels = read_xray(src, config=config)
        write_image_atomic(pixels, dst, fmt)
        return ExportResult(source, target, "written")
    except (DicomXrayError, OSError, ValueError) as exc:
        return ExportResult(source, target, "failed", str(exc))


def run_export(
    jobs: list[tuple[str, str]], fmt: str, config: PipelineConfig, *, workers: int, overwrite: bool, progress: bool
) -> list[ExportResult]:
    """Export every ``(source, target)`` pair with ``workers`` processes and a progress bar."""
    from tqdm import tqdm

    results: list[ExportResult] = []
    bar = tqdm(total=len(jobs), unit="img", desc="export", disable=not progress)
    if workers <= 1:
        for s, t in jobs:
            results.append(export_one(s, t, fmt, config, overwrite))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(export_one, s, t, fmt, config, overwrite) for s, t in jobs]
            for fut in futures:
                results.append(fut.result())
                bar.update()
    bar.close()
    return results


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
    from .index import find_dicoms

    if fmt not in ("png", "jpg"):
        raise ValueError(f"fmt must be 'png' or 'jpg', got {fmt!r}")
    src = Path(source)
    files = find_dicoms(src)
    base = src if src.is_dir() else src.parent
    dst = Path(target)
    jobs = [(str(f), str((dst / f.relative_to(base)).with_suffix("." + fmt))) for f in files]
    return run_export(jobs, fmt, config or PipelineConfig(), workers=workers, overwrite=overwrite, progress=progress)


def _cache_one(source: str, cache_dir: str, identity: str, config: PipelineConfig) -> ExportResult:
    from .cache import XrayCache

    cache = XrayCache(cache_dir, identity=identity)  # type: ignore[arg-type]
    try:
        cache.load(source, config)
    except DicomXrayError as exc:
        return ExportResult(source, cache_dir, "failed", str(exc))
    return ExportResult(source, cache_dir, "skipped" if cache.stats.hits else "written")


def build_cache(
    files: list[str],
    cache_dir: str | os.PathLike[str],
    *,
    config: PipelineConfig | None = None,
    identity: str = "stat",
    shard: tuple[int, int] = (0, 1),
    workers: int = 1,
    progress: bool = True,
) -> list[ExportResult]:
    """Fill the cache for ``files`` (the ``k``-th of ``n`` shards: ``files[k::n]``).

    Status ``written`` for new entries, ``skipped`` for entries already
    there, ``failed`` (with the error) for bad files.  Any job runner can run
    the shards in parallel: writes are atomic and keys never collide.
    """
    from tqdm import tqdm

    k, n = shard
    if not 0 <= k < n:
        raise ValueError(f"shard must be k/n with 0 <= k < n, got {k}/{n}")
    mine = files[k::n]
    cfg = config or PipelineConfig()
    results: list[ExportResult] = []
    bar = tqdm(total=len(mine), unit="img", desc=f"cache {k}/{n}", disable=not progress)
    if workers <= 1:
        for f in mine:
            results.append(_cache_one(f, os.fspath(cache_dir), identity, cfg))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for fut in [pool.submit(_cache_one, f, os.fspath(cache_dir), identity, cfg) for f in mine]:
                results.append(fut.result())
                bar.update()
    bar.close()
    return results
