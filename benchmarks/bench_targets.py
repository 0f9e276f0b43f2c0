"""A cached epoch with segmentation masks against one without: what masks cost the data loader.

Masks come from the labels (the cache keeps images only): each sample decodes its run-length strings at the
image's own size and maps them with the image's geometry.  Three label sources over the same cached films, timed
in turn (interleaved) over whole epochs in this process with ``ds.collate``: boxes only (no masks), SIIM-ACR-style
run-length masks decoded per sample, and masks already decoded (``ArrayMasks``).  Goal: masks within 10% of the
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
from dicomxray.labels import ArrayMasks, Target
from dicomxray.testing import chest_phantom, interleaved, write_dicom

from .common import machine, write_report

GOAL = 1.10  # a cached epoch with masks at most 10% slower than without


def rle_encode(mask: np.ndarray) -> str:
    """The competition's run-length encoding (column-major, relative starts) of one instance."""
    flat = np.concatenate([[0], mask.T.reshape(-1), [0]])
    edges = np.flatnonzero(flat[1:] != flat[:-1])
    starts, ends = edges[0::2], edges[1::2]
    rel = starts - np.concatenate([[0], ends[:-1]])
    return " ".join(f"{s} {e - b}" for s, b, e in zip(rel, starts, ends, strict=True))


@dataclass(frozen=True)
class RleMasks:
    """Run-length strings kept, decoded when the sample is read (what a SIIM-ACR source does)."""

    runs: tuple[str, ...]

    def instances(self, height: int, width: int) -> np.ndarray:
        out = np.zeros((len(self.runs), width * height + 1), np.int8)
        for n, rle in enumerate(self.runs):
            pairs = np.asarray(rle.split(), np.int64).reshape(-1, 2)
            starts = np.cumsum(pairs[:, 0] + np.concatenate([[0], pairs[:-1, 1]]))
            out[n, starts] += 1
            out[n, starts + pairs[:, 1]] -= 1
        planes = np.cumsum(out[:, :-1], axis=1, dtype=np.int8).astype(np.uint8)
        return planes.reshape(-1, width, height).transpose(0, 2, 1)


@dataclass
class Source:
    targets: dict[str, Target]
    classes: tuple[str, ...] = ("negative", "pneumothorax")
    box_classes: tuple[str, ...] = ("background", "pneumothorax")

    def target(self, key: str) -> Target | None:
        return self.targets.get(key)

    def keys(self) -> set[str]:
        return set(self.targets)


def films(root: Path, n: int, shape: tuple[int, int]) -> dict[str, list[tuple[int, int, int, int]]]:
    """``n`` films of ``shape``; two of three carry one or two lesions (ellipse-free rectangles are enough)."""
    h, w = shape
    rng = np.random.default_rng(0)
    base = chest_phantom(h, w, bits=12, seed=1)
    lesions = {}
    for i in range(n):
        write_dicom(root / f"{i:04d}.dcm", base, bits_stored=12)
        rects = []
        for _ in range(int(rng.integers(0, 3)) if i % 3 else 0):
            x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
            rects.append((x0, y0, x0 + int(rng.integers(20, w // 3)), y0 + int(rng.integers(20, h // 3))))
        lesions[f"{i:04d}"] = rects
    return lesions


def sources(lesions: dict[str, list[tuple[int, int, int, int]]], shape: tuple[int, int]) -> dict[str, Source]:
    boxes, rle, arrays = {}, {}, {}
    for key, rects in lesions.items():
        planes = np.zeros((len(rects), *shape), np.uint8)
        for k, (x0, y0, x1, y1) in enumerate(rects):
            planes[k, y0:y1, x0:x1] = 1
        b = np.asarray(rects, np.float32).reshape(-1, 4)
        boxes[key] = Target(boxes=b, box_labels=np.ones(len(b), np.int64), image_label=int(bool(rects)))
        rle[key] = Target(image_label=int(bool(rects)), masks=RleMasks(tuple(rle_encode(p) for p in planes)))
        arrays[key] = Target(image_label=int(bool(rects)), masks=ArrayMasks(planes))
    return {"boxes, no masks": Source(boxes), "run-length masks, decoded per sample": Source(rle),
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
        made = sources(films(root / "films", n, shape), shape)
        loaders = {}
        for name, source in made.items():
            ds = DicomXrayDataset(root / "films", labels=source, size=size, cache=root / "cache")
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
