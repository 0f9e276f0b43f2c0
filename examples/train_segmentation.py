"""Pneumothorax segmentation in the SIIM-ACR layout, end to end on CPU: a tiny U-Net, Dice on a held-out split.

    python examples/train_segmentation.py            # a synthetic SIIM-ACR-style folder, generated once
    python examples/train_segmentation.py --data DIR  # DIR/dicom-images-train/<study>/<series>/<SOP>.dcm + train-rle.csv

The label source is a few lines (``RleLabels`` below): the run-length strings are kept and decoded at the image's
own Rows x Columns only when a sample is read (``MaskSource``).  The dataset maps each mask with its image's
geometry and augmentation; ``ds.collate`` stacks ``mask`` as ``B x 1 x H x W``; predictions go back to each image's
own pixels with ``masks_to_original_batch`` for the Dice (and a submission's run-length strings).
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from _common import conv_block, pick_device, train_one_epoch
from torch import nn
from torch.utils.data import DataLoader, Subset

from dicomxray import DicomXrayDataset
from dicomxray.data import masks_to_original_batch
from dicomxray.labels import Target
from dicomxray.testing import chest_phantom, write_dicom


def rle_decode(rle: str, height: int, width: int) -> np.ndarray:
    """The competition's encoding: column-major, 0-based, each start relative to the end of the run before."""
    flat = np.zeros(height * width + 1, np.int8)
    pairs = np.asarray(rle.split(), np.int64).reshape(-1, 2)
    starts = np.cumsum(pairs[:, 0] + np.concatenate([[0], pairs[:-1, 1]]))
    np.add.at(flat, starts, 1)
    np.add.at(flat, starts + pairs[:, 1], -1)
    return np.cumsum(flat[:-1]).astype(np.uint8).reshape(width, height).T


def rle_encode(mask: np.ndarray) -> str:
    flat = np.concatenate([[0], mask.T.reshape(-1).astype(np.int8), [0]])
    edges = np.flatnonzero(flat[1:] != flat[:-1])
    starts, ends = edges[0::2], edges[1::2]
    rel = starts - np.concatenate([[0], ends[:-1]])
    return " ".join(f"{s} {e - b}" for s, b, e in zip(rel, starts, ends, strict=True)) or "-1"


@dataclass(frozen=True)
class RleMasks:
    """One image's run-length strings, decoded at its own size when its sample is read."""

    runs: tuple[str, ...]

    def instances(self, height: int, width: int) -> np.ndarray:
        planes = [rle_decode(r, height, width) for r in self.runs]
        return np.stack(planes) if planes else np.zeros((0, height, width), np.uint8)


class RleLabels:
    """``train-rle.csv`` (``ImageId, EncodedPixels``; ``-1`` empty; one row per pneumothorax) as a label source."""

    classes = ("no pneumothorax", "pneumothorax")
    box_classes = ("background", "pneumothorax")

    def __init__(self, csv_path: Path) -> None:
        runs: dict[str, list[str]] = {}
        with open(csv_path, newline="") as fh:
            for row in csv.DictReader(fh, skipinitialspace=True):
                rle = row["EncodedPixels"].strip()
                runs.setdefault(row["ImageId"], []).extend([] if rle == "-1" else [rle])
        self.runs = {k: tuple(v) for k, v in runs.items()}

    def target(self, key: str) -> Target | None:
        runs = self.runs.get(key)
        return None if runs is None else Target(image_label=int(bool(runs)), masks=RleMasks(runs))

    def keys(self) -> set[str]:
        return set(self.runs)


def make_folder(root: Path, images: int = 24, seed: int = 0) -> Path:
    """A SIIM-ACR-style folder: non-square films, one in three with one or two dark-edged bright lesions."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(images):
        h, w = 320, 288
        img = chest_phantom(h, w, bits=12, seed=i).astype(np.float32)
        runs = []
        for _ in range(int(rng.integers(1, 3)) if i % 3 == 0 else 0):
            x0, y0 = int(rng.integers(10, w - 90)), int(rng.integers(10, h - 90))
            mask = np.zeros((h, w), np.uint8)
            mask[y0 : y0 + int(rng.integers(30, 80)), x0 : x0 + int(rng.integers(30, 80))] = 1
            img[mask > 0] = 4000
            runs.append(rle_encode(mask))
        sop = f"1.2.276.0.7230010.3.1.4.{i}"
        write_dicom(root / "dicom-images-train" / f"1.2.{i}" / f"1.3.{i}" / f"{sop}.dcm", img.astype(np.uint16),
                    bits_stored=12, sop_uid=sop)
        rows += [(sop, r) for r in runs] or [(sop, "-1")]
    with open(root / "train-rle.csv", "w", newline="") as fh:
        fh.write("ImageId, EncodedPixels\n")
        fh.writelines(f"{sop}, {rle}\n" for sop, rle in rows)
    return root


class TinyUNet(nn.Module):
    def __init__(self, w: int = 8) -> None:
        super().__init__()
        self.d1, self.d2, self.d3 = conv_block(1, w, 1), conv_block(w, w * 2, 2), conv_block(w * 2, w * 4, 2)
        self.u2, self.u1 = conv_block(w * 4 + w * 2, w * 2, 1), conv_block(w * 2 + w, w, 1)
        self.head = nn.Conv2d(w, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.d1(x)
        b = self.d2(a)
        c = self.d3(b)
        up = nn.functional.interpolate
        b = self.u2(torch.cat([up(c, size=b.shape[-2:]), b], 1))
        return self.head(self.u1(torch.cat([up(b, size=a.shape[-2:]), a], 1)))


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """The competition's Dice: 1 when both masks are empty."""
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (pred & truth).sum() / total)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--cache-dir", type=Path, default=Path("demo_out") / "cache-seg")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    data = args.data
    if data is None:
        data = Path("demo_out") / "siim-acr-examples"
        if not (data / "train-rle.csv").exists():
            make_folder(data)
    labels = RleLabels(data / "train-rle.csv")
    import albumentations as A

    from dicomxray.transforms import bbox_params

    augment = A.Compose([A.HorizontalFlip(p=0.5), A.Affine(scale=(0.9, 1.1), rotate=(-8, 8), p=0.5)],
                        bbox_params=bbox_params(), seed=0)
    train_ds = DicomXrayDataset(data / "dicom-images-train", labels=labels, size=args.size, cache=args.cache_dir,
                                transform=augment)
    val_ds = DicomXrayDataset(data / "dicom-images-train", labels=labels, size=args.size, cache=args.cache_dir)
    order = np.random.default_rng(0).permutation(len(train_ds))
    held = max(2, len(order) // 4)
    train = DataLoader(Subset(train_ds, order[held:].tolist()), batch_size=args.batch_size, shuffle=True,
                       collate_fn=train_ds.collate)
    val = DataLoader(Subset(val_ds, order[:held].tolist()), batch_size=args.batch_size, collate_fn=val_ds.collate)
    device = pick_device()
    model = TinyUNet().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    bce = nn.BCEWithLogitsLoss()

    def loss_fn(batch: dict) -> torch.Tensor:
        return bce(model(batch["image"].to(device)), batch["mask"].to(device).float())

    for epoch in range(args.epochs):
        model.train()
        train_one_epoch(model, train, opt, loss_fn, epoch=epoch, max_steps=args.max_steps)
        model.eval()
        scores = []
        with torch.no_grad():
            for batch in val:
                probs = model(batch["image"].to(device)).sigmoid().cpu()
                predicted = masks_to_original_batch(probs, batch["meta"])  # each image's own Rows x Columns
                for pred, meta in zip(predicted, batch["meta"], strict=True):
                    truth = labels.target(Path(meta["path"]).stem).masks.instances(*pred.shape).any(0)
                    scores.append(dice(pred, truth))
        print(f"epoch {epoch} val Dice {np.mean(scores):.3f} over {len(scores)} images", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
