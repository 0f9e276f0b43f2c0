"""The main job on an embedded default: ``dicomxray demo`` (``make demo``).

1. generates a synthetic SIIM-COVID-shaped folder (chest-like images of a few
   thousand pixels, MONOCHROME1 and 2, several transfer syntaxes, both CSVs
   with boxes) unless it is already there;
2. runs one DataLoader epoch with augmentation from the DICOM files, filling
   the cache (cold), then a second epoch from the cache, with progress bars;
3. prints throughput of both and their ratio;
4. writes a preview PNG grid of augmented samples with their boxes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ..config import TRAINING_SIZE
from . import _options

__all__ = ["run_demo"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="generate a synthetic SIIM folder, cache it, train-load it, preview it",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default="demo_out", help="where everything is written")
    p.add_argument("--studies", type=_options.bounded_int(1, 10_000), default=32, help="synthetic studies")
    p.add_argument("--size", type=_options.size, default=TRAINING_SIZE, help="output size")
    p.add_argument("--workers", type=_options.workers, default=0, help="DataLoader workers")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_demo(args.out, studies=args.studies, size=args.size, workers=args.workers)
    return 0


def _epoch(loader: Any, desc: str) -> tuple[int, float]:
    from tqdm import tqdm

    n, t0 = 0, time.perf_counter()
    for batch in tqdm(loader, desc=desc, unit="batch"):
        n += int(batch["image"].shape[0])
    return n, time.perf_counter() - t0


def run_demo(out: str | Path = "demo_out", *, studies: int = 32, size: int = 512, image_size: tuple[int, int] = (2000, 2400),
             workers: int = 0, batch_size: int = 8) -> dict[str, Any]:
    """Run the demo and return its figures (also written to ``out/demo.json``)."""
    from pydicom import uid
    from torch.utils.data import DataLoader

    from ..data.dataset import DicomXrayDataset
    from ..labels import SIIM_STUDY_CLASSES, SiimCovid
    from ..testing import make_siim_dataset
    from ..transforms import train_transforms
    from .preview import preview_grid

    out = Path(out)
    data = out / "siim"
    marker = data / "train_image_level.csv"
    if not marker.exists():
        print(f"generating {studies} synthetic studies at about {image_size[0]}x{image_size[1]} in {data} ...", flush=True)
        t0 = time.perf_counter()
        make_siim_dataset(data, studies=studies, size=image_size, seed=0, syntaxes=(
            uid.ExplicitVRLittleEndian, uid.JPEGLosslessSV1, uid.JPEGLSLossless, uid.JPEG2000Lossless,
            uid.HTJ2KLossless, uid.RLELossless))
        print(f"  done in {time.perf_counter() - t0:.1f} s")
    cache_dir = out / "cache"
    labels = SiimCovid(data)
    ds = DicomXrayDataset(data / "train", labels=labels, size=size, cache=cache_dir,
                          transform=train_transforms(size), on_error="skip")
    for entry in ds.cache.entries() if ds.cache else []:  # a cold first epoch every run
        entry.unlink()
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers, collate_fn=ds.collate)
    n_cold, t_cold = _epoch(loader, "epoch 1 (decode + cache)")
    n_warm, t_warm = _epoch(loader, "epoch 2 (from cache)  ")
    grid = preview_grid(ds, out / "preview.png", count=8, cols=4, class_names=SIIM_STUDY_CLASSES)
    figures = {
        "images": n_cold, "size": size, "workers": workers,
        "cold_images_per_s": n_cold / t_cold, "cached_images_per_s": n_warm / t_warm,
        "speedup_from_cache": (n_warm / t_warm) / (n_cold / t_cold), "skipped": len(ds.skipped()),
        "preview": str(grid),
    }
    (out / "demo.json").write_text(json.dumps(figures, indent=2))
    print(f"\n{n_cold} images at {size}x{size}, augmentation on, {workers} worker(s)")
    print(f"  cold (decode+render+resize+augment): {figures['cold_images_per_s']:8.1f} images/s")
    print(f"  from cache (+augment):               {figures['cached_images_per_s']:8.1f} images/s")
    print(f"  speed-up from cache:                 {figures['speedup_from_cache']:8.1f}x")
    print(f"  preview grid: {grid}")
    return figures
