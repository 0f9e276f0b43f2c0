"""DataLoader throughput against its own limit, against MONAI, cold and warm.

    python -m benchmarks.bench_loader [--images 192] [--epochs 3] [--quick] [--out bench_out]

Steady state: persistent workers, one warm-up epoch, then the median of ``--epochs`` timed epochs, so worker
start-up is not what is measured.  Same DataLoader settings everywhere (batch 8, 512x512).

* **limit**: a dataset whose ``__getitem__`` returns a ready tensor of the same shape and dtype (one per index, held
  in RAM) plus the same small meta dict as ours; what the DataLoader itself costs (collate, inter-process transfer).
* **dicomxray cached**: the disk cache (one ``pread`` per hit), float32 from a uint8 render (the default),
  float32 from a float32 render (no conversion), and uint8 transport.
* **dicomxray RAM tier**: ``in_memory=True`` + ``preload()``.
* **MONAI** ``CacheDataset`` / ``PersistentDataset`` (LoadImage + ScaleIntensity + Resize), when installed.
* the same with ``train_transforms`` for dicomxray and the limit.
* cold epochs (decode every file) against the classic recipe.

Writes bench_out/loader.json and loader.md.
"""

from __future__ import annotations

import argparse
import gc
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


def steady(makers: dict[str, Callable[[], Dataset]], workers: int, epochs: int) -> dict[str, float]:
    """Images per second of each dataset: every loader built and warmed up first (persistent workers), then
    ``epochs`` rounds of one timed epoch each, interleaved (A B C A B C ...) so the noise of a shared machine
    falls on every case alike; the median epoch counts."""
    loaders = {}
    for name, make in makers.items():
        ds = make()
        loaders[name] = DataLoader(ds, batch_size=BATCH, num_workers=workers, persistent_workers=workers > 0)
        for _ in loaders[name]:  # warm-up: workers started, cache filled / pages mapped
            pass
    times: dict[str, list[float]] = {name: [] for name in loaders}
    for _ in range(epochs):
        for name, loader in loaders.items():
            t0 = time.perf_counter()
            for _ in loader:
                pass
            times[name].append(time.perf_counter() - t0)
    result = {name: len(loaders[name].dataset) / statistics.median(t) for name, t in times.items()}  # type: ignore[arg-type]
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
        "MONAI CacheDataset": lambda: CacheDataset(files, chain, progress=False, num_workers=0),
        "MONAI PersistentDataset": lambda: PersistentDataset(files, chain, cache_dir=cache_dir),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-monai", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    n = 32 if args.quick else args.images
    epochs = 1 if args.quick else args.epochs
    files = folder(n, args.quick)
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
        "dicomxray cached, float32 (float32 render, no conversion)": (ours("float32", cache="c32"), "float32"),
        "dicomxray RAM tier, float32 (float32 render)": (ours("float32", ram=True, cache="c32"), "float32"),
        "limit, uint8": (lambda: LimitDataset(n, size, torch.uint8), "limit"),
        "dicomxray cached, uint8": (ours(transport="uint8"), "uint8"),
        "dicomxray RAM tier, uint8": (ours(transport="uint8", ram=True), "uint8"),
        "limit + train_transforms": (lambda: LimitDataset(n, size, torch.float32, train_transforms(size)), "limit"),
        "dicomxray cached + train_transforms": (ours(aug=True), "aug"),
    }
    peers = {} if args.no_monai else monai_cases(files, size, str(tmp / "monai"))
    rows: list[list[Any]] = []
    results: dict[str, dict[str, float]] = {}
    for workers in (0, 2):
        got = steady({**{name: make for name, (make, _) in cases.items()}, **peers}, workers, epochs)
        results[f"workers={workers}"] = got
        limits = {"float32": got["limit, float32"], "uint8": got["limit, uint8"], "aug": got["limit + train_transforms"]}
        for name, ips in got.items():
            kind = cases[name][1] if name in cases else "float32"
            ratio = f"{ips / limits[kind]:.2f}x" if kind in limits else "-"
            monai = got.get("MONAI CacheDataset")
            rows.append([workers, name, ips, ratio, f"{ips / monai:.2f}x" if monai else "-"])
            print(rows[-1], flush=True)

    # Cold: every file decoded, against the classic recipe (0 workers, one pass each, interleaved twice).
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
    rows.append([0, "dicomxray cold (decode + cache write)", statistics.median(cold), "-", "-"])
    rows.append([0, "classic recipe", statistics.median(classic), "-", "-"])
    payload = {"machine": machine(), "images": n, "size": size, "batch": BATCH, "epochs": epochs,
               "images_per_s": results, "cold_images_per_s": statistics.median(cold),
               "classic_images_per_s": statistics.median(classic)}
    md = write_report(args.out, "loader", payload, rows,
                      ["workers", "dataset (512x512, batch 8, steady state)", "images/s", "vs its limit",
                       "vs MONAI CacheDataset"])
    print(f"Machine: {payload['machine']}\n\n{md}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(Path(files[0]).parent, ignore_errors=True)
    return payload


if __name__ == "__main__":
    main()
