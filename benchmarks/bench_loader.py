"""DataLoader throughput against its own limit and against MONAI, warm (from the cache or RAM) and cold.

    python -m benchmarks.bench_loader [--files 48] [--passes 16] [--repeats 5] [--quick] [--warm-only] [--out bench_out]

The warm configuration (every row of the table names it): ``--files`` distinct DICOMs, each read ``--passes``
times per epoch (a fixed shuffled order), a plain ``DataLoader(batch_size=8, num_workers=0 or 2)`` with its
default collate and persistent workers, or (rows "via ds.loader") ``ds.loader(batch_size=8, ...)``: the same
DataLoader with ``ready_collate`` and a ``PrefetchSampler``; 512x512 output.  Every loader is built and run once first (workers
started, cache filled), then the cases are timed one epoch each in turn (A B C A B C ...) ``--repeats`` times;
the median epoch counts.  Wall is images per second of the epoch; CPU is the CPU milliseconds per image of the
main process and its workers together (the cost one core pays: on a machine with fewer cores than workers the
two differ).

* torch runs one intra-op thread in the main process, as a DataLoader worker does (two spinning threads on a
  shared 2-core machine made the limit itself erratic).
* **limit**: a dataset whose ``__getitem__`` returns a ready tensor of the same shape and dtype (one per file,
  held in RAM) plus the same meta dict as ours: what the DataLoader itself costs (collate, worker transfer).
* **dicomxray cached**: the disk cache; float32 from a uint8 render (the default, converted per sample),
  float32 from a float32 render (no conversion), and uint8 transport.
* **dicomxray RAM tier**: ``in_memory=True`` + ``preload()``.
* **MONAI** ``CacheDataset`` (LoadImage + ScaleIntensity + Resize, cached in RAM) and ``PersistentDataset`` (on
  disk), when installed (``make bench`` installs MONAI), in the same configuration.
* the same with ``train_transforms`` for dicomxray and the limit.
* cold epochs (decode every file) against the classic recipe.

Writes bench_out/loader.json and loader.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dicomxray import DicomXrayDataset, pipeline_config
from dicomxray.testing import classic_read_xray

from .common import machine, write_report
from .data import bench_file

BATCH = 8
READY = " via ds.loader"


class LimitDataset(Dataset):
    """Returns a ready tensor of the same shape and dtype and a small meta: the DataLoader's own ceiling."""

    def __init__(self, n: int, size: int, dtype: torch.dtype, transform: Any = None) -> None:
        self.n, self.transform = n, transform
        rng = np.random.default_rng(0)
        arrays = [rng.integers(0, 256, (size, size), dtype=np.uint8) for _ in range(n)]  # n images, as in RAM
        self.images = [torch.from_numpy(a).unsqueeze(0).to(dtype) for a in arrays]
        self.array = arrays[0]
        # the same sample meta as DicomXrayDataset's (strings, an int64 size, one float64 geometry record)
        self.metas = [{"path": f"/data/{i:06d}.dcm", "sop_instance_uid": f"1.2.{i}", "study_instance_uid": f"1.3.{i}",
                       "series_instance_uid": f"1.4.{i}", "original_size": torch.tensor([2500, 2048]),
                       "geometry": torch.zeros(10, dtype=torch.float64), "index": i} for i in range(n)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self.images[index]
        if self.transform is not None:
            out = self.transform(image=self.array, bboxes=np.zeros((0, 4)), labels=np.zeros(0, np.int64))
            image = torch.from_numpy(out["image"]).unsqueeze(0).float().div_(255)
        return {"image": image, "meta": dict(self.metas[index])}


def folder(n: int, quick: bool) -> list[str]:
    from pydicom import uid

    mix = [uid.ExplicitVRLittleEndian, uid.JPEGLosslessSV1, uid.RLELossless, uid.HTJ2KLossless]
    shape = dict(height=500, width=400) if quick else dict(height=1250, width=1024)
    base = [bench_file(s, **shape) for s in mix]
    root = Path(tempfile.mkdtemp(prefix="dxloader-"))
    files = []
    for i in range(n):  # distinct paths (distinct cache keys) over a realistic mix of syntaxes
        dst = root / f"{i:04d}.dcm"
        shutil.copyfile(base[i % len(base)], dst)
        files.append(str(dst))
    return files


def cpu_seconds() -> float:
    """CPU seconds of this process and its living children (the DataLoader's workers), from ``/proc``; this
    process alone where there is no ``/proc``."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        kids = {int(pid) for task in Path("/proc/self/task").iterdir()
                for pid in (task / "children").read_text().split()}
    except OSError:
        return total
    for pid in kids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def epoch_order(n: int, passes: int) -> list[int]:
    """Every file ``passes`` times, in one fixed shuffled order (the same for every case)."""
    return np.random.default_rng(0).permutation(np.tile(np.arange(n), passes)).tolist()


def steady(makers: dict[str, Callable[[], Dataset]], workers: int, order: list[int],
           repeats: int) -> dict[str, dict[str, float]]:
    """Images per second (wall) and CPU milliseconds per image (this process and its workers) of each dataset
    over ``order``: every loader built and run once first (persistent workers started, cache filled), then
    ``repeats`` rounds of one timed epoch each, interleaved (A B C A B C ...) so the noise of a shared machine
    falls on every case alike; medians of the rounds."""
    torch.set_num_threads(1)  # as in a DataLoader worker: on a shared 2-core machine two threads spin and stall
    loaders: dict[str, DataLoader] = {}
    for name, make in makers.items():
        ds = make()
        if name.endswith(READY):  # the dataset's own loader: the batch handed on without a copy
            loaders[name] = ds.loader(batch_size=BATCH, sampler=order, num_workers=workers)  # type: ignore[attr-defined]
        else:
            loaders[name] = DataLoader(ds, batch_size=BATCH, sampler=order, num_workers=workers,
                                       persistent_workers=workers > 0)
        for _ in loaders[name]:  # warm-up: workers started, cache filled, pages in the page cache
            pass
    wall: dict[str, list[float]] = {name: [] for name in loaders}
    cpu: dict[str, list[float]] = {name: [] for name in loaders}
    for _ in range(repeats):
        for name, loader in loaders.items():
            c0, t0 = cpu_seconds(), time.perf_counter()
            for _ in loader:
                pass
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(cpu_seconds() - c0)
    result = {name: {"images_per_s": len(order) / statistics.median(wall[name]),
                     "cpu_ms_per_image": 1e3 * statistics.median(cpu[name]) / len(order)} for name in loaders}
    del loaders
    gc.collect()
    return result


def monai_cases(files: list[str], size: int, cache_dir: str) -> dict[str, Callable[[], Dataset]]:
    try:
        from monai.data import CacheDataset, PersistentDataset
        from monai.transforms import Compose, EnsureChannelFirst, LoadImage, Resize, ScaleIntensity
    except ImportError:
        return {}
    chain = Compose([LoadImage(image_only=True, reader="PydicomReader"), EnsureChannelFirst(),
                     ScaleIntensity(), Resize((size, size))])
    return {
        "MONAI CacheDataset (RAM), float32": lambda: CacheDataset(files, chain, progress=False, num_workers=0),
        "MONAI PersistentDataset (disk), float32": lambda: PersistentDataset(files, chain, cache_dir=cache_dir),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=48)
    parser.add_argument("--passes", type=int, default=16, help="reads of each file per epoch")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per case (interleaved)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--warm-only", action="store_true", help="leave out the cold epochs")
    parser.add_argument("--no-monai", action="store_true")
    parser.add_argument("--no-aug", action="store_true", help="leave out the train_transforms rows")
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    n = 16 if args.quick else args.files
    passes = 2 if args.quick else args.passes
    repeats = 1 if args.quick else args.repeats
    files = folder(n, args.quick)
    order = epoch_order(n, passes)
    tmp = Path(tempfile.mkdtemp(prefix="dxloader-cache-"))
    size = args.size
    from dicomxray.transforms import train_transforms

    def ours(render: str = "uint8", transport: str = "float32", ram: bool = False, aug: bool = False,
             cache: str = "c") -> Callable[[], Dataset]:
        def make() -> Dataset:
            ds = DicomXrayDataset(files=files, config=pipeline_config(size=size, dtype=render),  # type: ignore[arg-type]
                                  cache=tmp / cache, image_dtype=transport, in_memory=ram,  # type: ignore[arg-type]
                                  transform=train_transforms(size) if aug else None)
            return ds.preload(progress=False) if ram else ds
        return make

    cases: dict[str, tuple[Callable[[], Dataset], str]] = {
        "limit, float32": (lambda: LimitDataset(n, size, torch.float32), "limit"),
        "dicomxray cached, float32 (uint8 render, converted)": (ours(), "float32"),
        "dicomxray cached, float32 (float32 render)": (ours("float32", cache="c32"), "float32"),
        "dicomxray RAM tier, float32 (float32 render)": (ours("float32", ram=True, cache="c32"), "float32"),
        "limit, uint8": (lambda: LimitDataset(n, size, torch.uint8), "limit"),
        "dicomxray cached, uint8": (ours(transport="uint8"), "uint8"),
        "dicomxray RAM tier, uint8": (ours(transport="uint8", ram=True), "uint8"),
        "dicomxray cached, float32 (uint8 render, converted)" + READY: (ours(), "float32"),
        "dicomxray cached, float32 (float32 render)" + READY: (ours("float32", cache="c32"), "float32"),
        "dicomxray RAM tier, float32 (float32 render)" + READY: (ours("float32", ram=True, cache="c32"), "float32"),
        "dicomxray cached, uint8" + READY: (ours(transport="uint8"), "uint8"),
        "dicomxray RAM tier, uint8" + READY: (ours(transport="uint8", ram=True), "uint8"),
    }
    if not args.no_aug:
        cases["limit + train_transforms"] = (lambda: LimitDataset(n, size, torch.float32, train_transforms(size)),
                                             "limit")
        cases["dicomxray cached + train_transforms"] = (ours(aug=True), "aug")
    peers = {} if args.no_monai else monai_cases(files, size, str(tmp / "monai"))
    config = f"{n} files x {passes} per epoch, batch {BATCH}, {size}x{size}, persistent workers, 1 torch thread"
    rows: list[list[Any]] = []
    ratios: list[dict[str, Any]] = []  # every case against its limit and MONAI, for run_all's goal lines
    results: dict[str, dict[str, dict[str, float]]] = {}
    for workers in args.workers:
        got = steady({**{name: make for name, (make, _) in cases.items()}, **peers}, workers, order, repeats)
        results[f"workers={workers}"] = got
        limits = {"float32": got["limit, float32"]["images_per_s"], "uint8": got["limit, uint8"]["images_per_s"]}
        if "limit + train_transforms" in got:
            limits["aug"] = got["limit + train_transforms"]["images_per_s"]
        monai = got.get("MONAI CacheDataset (RAM), float32", {}).get("images_per_s")
        for name, r in got.items():
            kind = cases[name][1] if name in cases else "float32"
            ips = r["images_per_s"]
            ratio = f"{ips / limits[kind]:.2f}x" if kind in limits else "-"
            rows.append([workers, name, ips, r["cpu_ms_per_image"], ratio, f"{ips / monai:.2f}x" if monai else "-"])
            ratios.append({"workers": workers, "case": name, "vs_limit": ips / limits[kind] if kind in limits else None,
                           "vs_monai": ips / monai if monai else None})
            print(rows[-1], flush=True)

    cold_ips = classic_ips = None
    if not args.warm_only:  # cold: every file decoded, against the classic recipe (0 workers, interleaved)
        cold, classic = [], []
        for _ in range(2 if not args.quick else 1):
            shutil.rmtree(tmp / "cold", ignore_errors=True)
            ds = DicomXrayDataset(files=files, size=size, cache=tmp / "cold")
            t0 = time.perf_counter()
            for _ in DataLoader(ds, batch_size=BATCH):
                pass
            cold.append(n / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for f in files:
                torch.from_numpy(classic_read_xray(f, size).astype(np.float32) / 255.0)
            classic.append(n / (time.perf_counter() - t0))
        cold_ips, classic_ips = statistics.median(cold), statistics.median(classic)
        rows.append([0, f"dicomxray cold (decode + cache write), {n} files once", cold_ips, "-", "-", "-"])
        rows.append([0, f"classic recipe, {n} files once", classic_ips, "-", "-", "-"])
    payload = {"machine": machine(), "configuration": config, "files": n, "passes": passes, "size": size,
               "batch": BATCH, "repeats": repeats, "images_per_s": results, "ratios": ratios, "cold_images_per_s": cold_ips,
               "classic_images_per_s": classic_ips}
    md = write_report(args.out, "loader", payload, rows,
                      ["workers", f"dataset ({config}; plain DataLoader, default collate, unless via ds.loader)",
                       "images/s (wall)",
                       "CPU ms/image (all processes)", "vs its limit (wall)", "vs MONAI CacheDataset (wall)"])
    print(f"Machine: {payload['machine']}\n\n{md}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(Path(files[0]).parent, ignore_errors=True)
    return payload


if __name__ == "__main__":
    main()
