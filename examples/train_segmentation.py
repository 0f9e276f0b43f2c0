"""Pneumothorax segmentation in the SIIM-ACR layout, end to end on CPU: a tiny U-Net, Dice on a held-out split.

    python examples/train_segmentation.py            # a synthetic SIIM-ACR-style folder, generated once
    python examples/train_segmentation.py --data DIR  # DIR/dicom-images-train/<study>/<series>/<SOP>.dcm + train-rle.csv

The labels are ``SiimAcrPneumothorax(folder)``: it reads ``train-rle.csv`` (or ``stage_2_train.csv``), keeps the
run-length strings and decodes each image's mask at its own Rows x Columns only when its sample is read.  The
dataset maps each mask with its image's geometry and augmentation; ``ds.collate`` stacks ``mask`` as
``B x 1 x H x W``; predictions go back to each image's own pixels with ``masks_to_original_batch`` and are scored
with the competition's Dice (``siim_acr_dice``; ``siim_acr_rle`` writes a submission's run-length strings).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from _common import conv_block, pick_device, small_task_args, train_one_epoch
from torch import nn
from torch.utils.data import DataLoader, Subset

from dicomxray import DicomXrayDataset
from dicomxray.labels import SiimAcrPneumothorax, masks_to_original_batch, siim_acr_rle
from dicomxray.labels.metrics import siim_acr_dice
from dicomxray.testing import chest_phantom, write_dicom


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
            runs.append(siim_acr_rle(mask))
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


def main(argv: list[str] | None = None) -> int:
    args = small_task_args(argv, __doc__, epochs=3, cache="cache-seg")
    torch.manual_seed(0)
    data = args.data
    if data is None:
        data = Path("demo_out") / "siim-acr-examples"
        if not (data / "train-rle.csv").exists():
            make_folder(data)
    labels = SiimAcrPneumothorax(data)  # train-rle.csv beside dicom-images-train/
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
        predictions, truth = {}, {}
        with torch.no_grad():
            for batch in val:
                probs = model(batch["image"].to(device)).sigmoid().cpu()
                predicted = masks_to_original_batch(probs, batch["meta"])  # each image's own Rows x Columns
                for pred, meta in zip(predicted, batch["meta"], strict=True):
                    key = Path(meta["path"]).stem
                    predictions[key], truth[key] = pred, labels.mask(key, *pred.shape)
        score = siim_acr_dice(predictions, truth)
        print(f"epoch {epoch} val Dice {score.value:.3f} over {len(truth)} images", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
