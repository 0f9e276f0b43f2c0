"""DataLoader epochs: the classic recipe, dicomxray cold, dicomxray from cache; 0 and 2 workers.

Also the per-image cache read against a plain memory copy of the same bytes
(the physical limit), and peak resident memory of the worker processes.
Writes bench_out/loader.json and loader.md.
Run: python -m benchmarks.bench_loader [--images 16] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import resource
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from dicomxray import DicomXrayDataset, XrayCache, pipeline_config
from dicomxray.testing import classic_read_xray

from .common import machine, write_report
from .data import bench_file


def folder(n: int, quick: bool) -> list[str]:
    from pydicom import uid

    mix = [uid.ExplicitVRLittleEndian, uid.JPEGLosslessSV1, uid.RLELossless, uid.HTJ2KLossless]
    shape = dict(height=500, width=400) if quick else {}
    base = [bench_file(s, **shape) for s in mix]
    root = Path(tempfile.mkdtemp(prefix="dxloader-"))
    files = []
    for i in range(n):  # distinct paths (distinct cache keys) over a realistic mix of syntaxes
        dst = root / f"{i:04d}.dcm"
        shutil.copyfile(base[i % len(base)], dst)
        files.append(str(dst))
    return files


def epoch(loader) -> float:
    t0 = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - t0


def classic_epoch(files: list[str], size: int) -> float:
    t0 = time.perf_counter()
    for f in files:
        torch.from_numpy(classic_read_xray(f, size).astype(np.float32) / 255.0)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    n = 6 if args.quick else args.images
    repeat = 1 if args.quick else args.repeat
    files = folder(n, args.quick)
    results: dict[str, float] = {}
    rss: dict[str, float] = {}
    samples: dict[str, list[float]] = {k: [] for k in ("classic", "cold_w0", "cache_w0", "cold_w2", "cache_w2")}
    for _ in range(repeat):  # interleaved
        samples["classic"].append(classic_epoch(files, args.size))
        for workers in (0, 2):
            cache_dir = tempfile.mkdtemp(prefix="dxcache-")
            ds = DicomXrayDataset(Path(files[0]).parent, files=files, size=args.size, cache=cache_dir)
            kw = dict(batch_size=4, num_workers=workers, persistent_workers=workers > 0)
            loader = DataLoader(ds, **kw)
            samples[f"cold_w{workers}"].append(epoch(loader))
            samples[f"cache_w{workers}"].append(epoch(loader))
            del loader, ds
            gc.collect()  # joins the workers, so their peak RSS is counted below
            if workers:
                rss["worker_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            shutil.rmtree(cache_dir, ignore_errors=True)
    for k, v in samples.items():
        results[k] = statistics.median(v) / n * 1e3  # ms per image
    rss["main_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # Per-image cache read against a memory copy of the same bytes.
    cache = XrayCache(tempfile.mkdtemp(prefix="dxread-"))
    cfg = pipeline_config(size=args.size)
    img = cache.load(files[0], cfg).pixels
    reads, copies = [], []
    for _ in range(2000):
        t0 = time.perf_counter()
        np.array(cache.load(files[0], cfg).pixels)  # read + copy out, as the dataset does
        reads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        np.array(img)
        copies.append(time.perf_counter() - t0)
    read_us, copy_us = statistics.median(reads) * 1e6, statistics.median(copies) * 1e6
    ratios = {
        "cache_vs_classic_w0": results["classic"] / results["cache_w0"],
        "cache_vs_cold_w0": results["cold_w0"] / results["cache_w0"],
        "cold_vs_classic_w0": results["classic"] / results["cold_w0"],
        "cache_read_vs_memcpy": read_us / copy_us,
    }
    payload = {"machine": machine(), "images": n, "size": args.size, "ms_per_image": results, "memory": rss,
               "cache_read_us": read_us, "memcpy_us": copy_us, "ratios": ratios}
    rows = [
        ["classic recipe, no DataLoader", results["classic"], "1.0x"],
        ["dicomxray cold, 0 workers", results["cold_w0"], f"{results['classic'] / results['cold_w0']:.1f}x"],
        ["dicomxray from cache, 0 workers", results["cache_w0"], f"{results['classic'] / results['cache_w0']:.0f}x"],
        ["dicomxray cold, 2 workers", results["cold_w2"], f"{results['classic'] / results['cold_w2']:.1f}x"],
        ["dicomxray from cache, 2 workers", results["cache_w2"], f"{results['classic'] / results['cache_w2']:.0f}x"],
        [f"cache read of one {args.size}x{args.size} image (+copy out)", read_us / 1e3,
         f"{ratios['cache_read_vs_memcpy']:.1f}x memcpy"],
        ["memcpy of the same bytes", copy_us / 1e3, "physical limit"],
    ]
    md = write_report(args.out, "loader", payload, rows, ["epoch over the folder", "ms per image", "vs classic"])
    print(f"Machine: {payload['machine']}\n\n{md}")
    print(f"worker peak RSS {rss.get('worker_peak_rss_mb', 0):.0f} MB, main {rss['main_peak_rss_mb']:.0f} MB")
    shutil.rmtree(Path(files[0]).parent, ignore_errors=True)
    return payload


if __name__ == "__main__":
    main()
