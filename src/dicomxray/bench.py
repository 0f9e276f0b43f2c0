"""Throughput against the classic recipe, for ``dicomxray bench`` and ``benchmarks/``.

The classic Kaggle ``read_xray`` recipe is written here (our own code) as the
baseline: pydicom ``pixel_array`` -> ``apply_voi_lut`` (float64) ->
MONOCHROME1 inversion -> min-max -> ``* 255`` -> ``astype(uint8)`` -> PIL
LANCZOS.  It ignores the Modality LUT (so a negative Rescale Slope comes out
inverted); dicomxray differs there on purpose.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["bench_folder", "classic_read_xray", "interleaved"]


def classic_read_xray(path: str | os.PathLike[str], size: int | None = None, *, keep_ratio: bool = False) -> np.ndarray:
    """The notebook recipe everyone copies, as the baseline for parity and speed."""
    import pydicom
    from PIL import Image
    from pydicom.pixels import apply_voi_lut

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
        data = apply_voi_lut(ds.pixel_array, ds)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        data = np.amax(data) - data
    data = data - np.min(data)
    data = data / np.max(data)
    data = (data * 255).astype(np.uint8)
    if size is None:
        return data
    im = Image.fromarray(data)
    if keep_ratio:
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
    else:
        im = im.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(im)


def interleaved(cases: dict[str, Callable[[], Any]], repeat: int, warmup: int = 1) -> dict[str, dict[str, float]]:
    """Run every case in turn (A B C A B C ...) ``repeat`` times; medians of wall and CPU ms.

    Interleaving spreads the noise of a shared machine evenly over the cases.
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


def bench_folder(root: str | os.PathLike[str], *, size: int = 512, limit: int = 20, repeat: int = 3,
                 out: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Time ``read_xray(path, size)`` against the classic recipe on up to ``limit`` files of ``root``."""
    from .index import find_dicoms
    from .xray import load_xray, read_xray

    files = find_dicoms(root)[:limit]
    rows: list[dict[str, Any]] = []
    for f in files:
        try:
            meta = load_xray(f, size).meta
            cases: dict[str, Callable[[], Any]] = {
                "classic": partial(classic_read_xray, f, size), "dicomxray": partial(read_xray, f, size)}
            t = interleaved(cases, repeat)
        except Exception as exc:  # ours raise DicomXrayError; the classic recipe whatever pydicom raises
            print(f"{f}: skipped ({type(exc).__name__}: {exc})")
            continue
        ratio = t["classic"]["wall_ms"] / t["dicomxray"]["wall_ms"]
        rows.append({"file": str(f), "syntax": meta.transfer_syntax, "decoder": meta.decoder, **{
            f"{k}_ms": v["wall_ms"] for k, v in t.items()}, "speedup": ratio})
        print(f"{Path(f).name:<40} {meta.decoder:<12} classic {t['classic']['wall_ms']:8.1f} ms  "
              f"dicomxray {t['dicomxray']['wall_ms']:7.1f} ms  {ratio:5.1f}x", flush=True)
    summary: dict[str, Any] = {"files": len(rows), "size": size, "rows": rows}
    if rows:
        summary["median_speedup"] = statistics.median(float(r["speedup"]) for r in rows)
        summary["total_classic_ms"] = sum(r["classic_ms"] for r in rows)
        summary["total_dicomxray_ms"] = sum(r["dicomxray_ms"] for r in rows)
        print(f"\n{len(rows)} files: median speed-up {summary['median_speedup']:.1f}x, "
              f"total {summary['total_classic_ms']:.0f} ms -> {summary['total_dicomxray_ms']:.0f} ms")
    if out:
        Path(out).write_text(json.dumps(summary, indent=2))
    return summary
