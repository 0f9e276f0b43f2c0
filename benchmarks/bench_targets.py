"""A cached epoch with segmentation masks against one without: what masks cost the data loader.

Masks come from the labels (the cache keeps images only): each sample decodes its run-length strings at the
image's own size and maps them with the image's geometry.  Three label sources over the same cached films, timed
in turn (interleaved) over whole epochs in this process with ``ds.collate``: boxes only (no masks),
:class:`~dicomxray.labels.SiimAcrPneumothorax` over a folder in the competition's layout (``train-rle.csv``; the
union, and one plane per pneumothorax), and masks already decoded (``ArrayMasks``).  Goal: masks within 10% of the
epoch without them.

Run: python -m benchmarks.bench_targets [--quick] --out bench_out   (part of ``make bench``)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from dicomxray import DicomXrayDataset
from dicomxray.labels import ArrayMasks, SiimAcrPneumothorax, Target, siim_acr_rle
from dicomxray.testing import chest_phantom, interleaved, write_dicom

from .common import machine, write_report

GOAL = 1.10  # a cached epoch with masks at most 10% slower than without


@dataclass
class Source:
    targets: dict[str, Target]
    classes: tuple[str, ...] = ("negative", "pneumothorax")
    box_classes: tuple[str, ...] = ("background", "pneumothorax")

    def target(self, key: str) -> Target | None:
        return self.targets.get(key)

    def keys(self) -> set[str]:
        return set(self.targets)


def sop(i: int) -> str:
    return f"1.2.276.0.7230010.3.1.4.8323329.{1000 + i}.1517875162.{i}"


def films(root: Path, n: int, shape: tuple[int, int]) -> dict[str, list[tuple[int, int, int, int]]]:
    """``n`` films of ``shape`` in SIIM-ACR's layout (``dicom-images-train/<study>/<series>/<SOP>.dcm``); two of
    three may carry one or two lesions (rectangles: like a pneumothorax, one run per column)."""
    h, w = shape
    rng = np.random.default_rng(0)
    base = chest_phantom(h, w, bits=12, seed=1)
    lesions = {}
    for i in range(n):
        key = sop(i)
        write_dicom(root / "dicom-images-train" / f"1.2.{i}" / f"1.3.{i}" / f"{key}.dcm", base, bits_stored=12)
        rects = []
        for _ in range(int(rng.integers(0, 3)) if i % 3 else 0):
            x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
            rects.append((x0, y0, x0 + int(rng.integers(20, w // 3)), y0 + int(rng.integers(20, h // 3))))
        lesions[key] = rects
    return lesions


def sources(root: Path, lesions: dict[str, list[tuple[int, int, int, int]]], shape: tuple[int, int]
            ) -> dict[str, Any]:
    """The label sources timed: boxes only, :class:`SiimAcrPneumothorax` over ``root/train-rle.csv`` (the union,
    and one plane per pneumothorax), and the same masks already decoded."""
    boxes, arrays, lines = {}, {}, ["ImageId, EncodedPixels"]
    for key, rects in lesions.items():
        planes = np.zeros((len(rects), *shape), np.uint8)
        for k, (x0, y0, x1, y1) in enumerate(rects):
            planes[k, y0:y1, x0:x1] = 1
        b = np.asarray(rects, np.float32).reshape(-1, 4)
        boxes[key] = Target(boxes=b, box_labels=np.ones(len(b), np.int64), image_label=int(bool(rects)))
        arrays[key] = Target(image_label=int(bool(rects)), masks=ArrayMasks(planes), mask_label=1)
        lines += [f"{key}, {siim_acr_rle(p)}" for p in planes] or [f"{key}, -1"]
    (root / "train-rle.csv").write_text("\n".join(lines) + "\n")
    return {"boxes, no masks": Source(boxes),
            "SiimAcrPneumothorax (union, run lengths)": SiimAcrPneumothorax(root),
            "SiimAcrPneumothorax(instances=True)": SiimAcrPneumothorax(root, instances=True),
            "decoded masks (ArrayMasks)": Source(arrays)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # in-process epochs: torch's intra-op threads only contend on a small machine
    n, shape, size = (24, (500, 400), 256) if args.quick else (64, (1024, 848), 512)
    repeat = args.repeat or (3 if args.quick else 7)
    root = Path(tempfile.mkdtemp(prefix="dxtargets-"))
    try:
        made = sources(root, films(root, n, shape), shape)
        loaders = {}
        for name, source in made.items():
            ds = DicomXrayDataset(root / "dicom-images-train", labels=source, size=size, cache=root / "cache")
            loaders[name] = DataLoader(ds, batch_size=16, num_workers=0, collate_fn=ds.collate)

        def epoch(loader: DataLoader) -> Any:
            return lambda: [b["image"] for b in loader]

        timed = interleaved({name: epoch(loader) for name, loader in loaders.items()}, repeat=repeat, warmup=1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = timed["boxes, no masks"]
    rows, results = [], []
    for name, t in timed.items():
        ratio = t["wall_ms"] / base["wall_ms"]
        rows.append([name, t["wall_ms"] * 1000 / n, t["cpu_ms"] * 1000 / n, ratio])
        results.append({"case": name, "us_per_image_wall": t["wall_ms"] * 1000 / n,
                        "us_per_image_cpu": t["cpu_ms"] * 1000 / n, "vs_no_masks": ratio})
    payload = {"machine": machine(), "films": n, "shape": list(shape), "size": size, "repeat": repeat,
               "goal_vs_no_masks": GOAL, "results": results}
    md = write_report(args.out, "bench_targets", payload, rows,
                      ["cached epoch, in-process, ds.collate", "us/image (wall, median)", "us/image (CPU, median)",
                       "vs no masks"])
    print(f"Cached epoch with masks vs without ({n} films {shape[0]}x{shape[1]} to {size}, {machine()}):")
    print(md)
    return payload


if __name__ == "__main__":
    main()
