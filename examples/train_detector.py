"""SIIM-COVID opacity detection with a minimal CenterNet-style head in plain torch, and a submission.csv.

    python examples/train_detector.py                      # synthetic SIIM-style data, generated once
    python examples/train_detector.py --data /kaggle/siim  # the real competition folder

The detection collate gives per-image box lists; the model predicts a centre heatmap, box sizes and centre offsets
at stride 4; predicted boxes (output pixels) are mapped back to original pixels with ``boxes_to_original`` and
written as the competition's ``PredictionString`` (``opacity conf x0 y0 x1 y1 ...`` or ``none 1 0 0 1 1``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import SmallBackbone, conv_block, ensure_data, pick_device, sized_boxes, train_one_epoch
from torch import nn
from torch.utils.data import DataLoader, Subset

from dicomxray import DicomXrayDataset, Geometry, boxes_to_original, pipeline_config
from dicomxray.labels import SiimCovid, parse_prediction_string, patient_folds, prediction_strings, write_submission
from dicomxray.labels.metrics import siim_map, siim_truth
from dicomxray.labels.splits import read_patient_ids
from dicomxray.transforms import train_transforms, val_transforms

STRIDE = 4


class CenterNet(nn.Module):
    """Heatmap (1 class), size (w, h as a fraction of the input) and sub-pixel offset, all at stride 4."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = SmallBackbone()
        c4, c32 = self.backbone.out_channels
        self.fuse = conv_block(c4 + c32, 64, 1)
        self.heat = nn.Conv2d(64, 1, 1)
        self.size = nn.Conv2d(64, 2, 1)
        self.offset = nn.Conv2d(64, 2, 1)
        nn.init.constant_(self.heat.bias, -2.19)  # prior 0.1, as CenterNet does

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s4, deep = self.backbone(x)
        up = nn.functional.interpolate(deep, size=s4.shape[-2:], mode="nearest")
        f = self.fuse(torch.cat([s4, up], 1))
        return self.heat(f), self.size(f).sigmoid(), self.offset(f).sigmoid()


def make_targets(boxes: list[torch.Tensor], fh: int, fw: int, size: int):
    n = len(boxes)
    heat = torch.zeros(n, 1, fh, fw)
    wh = torch.zeros(n, 2, fh, fw)
    off = torch.zeros(n, 2, fh, fw)
    mask = torch.zeros(n, 1, fh, fw)
    ys, xs = torch.arange(fh).view(-1, 1).float(), torch.arange(fw).view(1, -1).float()
    for i, b in enumerate(boxes):
        for x0, y0, x1, y1 in b.tolist():
            cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
            w, h = (x1 - x0) / STRIDE, (y1 - y0) / STRIDE
            if w < 1 or h < 1:
                continue
            ix, iy = min(int(cx), fw - 1), min(int(cy), fh - 1)
            sigma = max(w, h) / 6
            g = torch.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma**2))
            heat[i, 0] = torch.maximum(heat[i, 0], g)
            wh[i, :, iy, ix] = torch.tensor([(x1 - x0) / size, (y1 - y0) / size])
            off[i, :, iy, ix] = torch.tensor([cx - ix, cy - iy])
            mask[i, 0, iy, ix] = 1
    return heat, wh, off, mask


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced pixel-wise focal loss."""
    p = logits.sigmoid().clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1 - pos
    pos_loss = torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = torch.log(1 - p) * p**2 * (1 - target) ** 4 * neg
    return -(pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


def decode(heat: torch.Tensor, wh: torch.Tensor, off: torch.Tensor, size: int, k: int = 5, thresh: float = 0.01):
    """Top-k heatmap peaks -> boxes (xyxy output pixels) and scores, per image."""
    p = heat.sigmoid()
    peaks = (p == nn.functional.max_pool2d(p, 3, 1, 1)).float() * p
    out = []
    for i in range(p.shape[0]):
        scores, idx = peaks[i, 0].flatten().topk(k)
        keep = scores > thresh
        scores, idx = scores[keep], idx[keep]
        fw = p.shape[-1]
        iy, ix = (idx // fw).float(), (idx % fw).float()
        cx = (ix + off[i, 0].flatten()[idx]) * STRIDE
        cy = (iy + off[i, 1].flatten()[idx]) * STRIDE
        w, h = wh[i, 0].flatten()[idx] * size, wh[i, 1].flatten()[idx] * size
        out.append((torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1), scores))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--cache-dir", type=Path, default=Path("demo_out") / "cache")
    ap.add_argument("--submission", type=Path, default=Path("submission.csv"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    data = ensure_data(args.data)
    labels = SiimCovid(data)
    kw = dict(labels=labels, config=pipeline_config(size=args.size, letterbox=True), cache=args.cache_dir, on_error="skip")
    train_ds = DicomXrayDataset(data / "train", transform=train_transforms(args.size), **kw)
    val_ds = DicomXrayDataset(data / "train", transform=val_transforms(args.size), **kw)
    classes = [labels.target(Path(f).stem).image_label for f in train_ds.files]
    folds = patient_folds(read_patient_ids(train_ds.files), classes, k=4, seed=args.seed)
    train_loader = DataLoader(Subset(train_ds, [i for i, f in enumerate(folds) if f != 0]), batch_size=args.batch_size,
                              shuffle=True, num_workers=args.workers, collate_fn=train_ds.collate, drop_last=True)
    val_loader = DataLoader(Subset(val_ds, [i for i, f in enumerate(folds) if f == 0]), batch_size=args.batch_size,
                            num_workers=args.workers, collate_fn=val_ds.collate)
    device = pick_device()
    model = CenterNet().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    history = []
    def loss_fn(batch: dict) -> torch.Tensor:
        heat, wh, off = model(batch["image"].to(device))
        th, twh, toff, mask = (t.to(device) for t in make_targets(batch["boxes"], *heat.shape[-2:], args.size))
        n = mask.sum().clamp(min=1)
        return focal_loss(heat, th) + 5 * (mask * (wh - twh).abs()).sum() / n + (mask * (off - toff).abs()).sum() / n

    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        losses = train_one_epoch(model, train_loader, opt, loss_fn, epoch=epoch, max_steps=args.max_steps)
        # validation: the competition's image-level metric (mAP@0.5 of opacity and none), in original pixels
        model.eval()
        rows = []
        with torch.no_grad():
            for batch in val_loader:
                for (boxes, scores), meta in zip(decode(*model(batch["image"].to(device)), args.size), batch["meta"],
                                                 strict=True):
                    orig = boxes_to_original(boxes.cpu().numpy(), Geometry.from_record(meta["geometry"]))
                    kept, kept_scores = sized_boxes(orig, scores)
                    text = prediction_strings(kept, kept_scores, none_score=1.0 - max(kept_scores, default=0.0))
                    rows.append((f"{meta['sop_instance_uid']}_image", text))
        predictions = {k: parse_prediction_string(text, "siim", row_id=k) for k, text in rows}
        truth = {k: p for k, p in siim_truth(labels, [k.removesuffix("_image") for k in predictions]).items()
                 if k.endswith("_image")}
        score = siim_map(predictions, truth)
        half = max(1, len(losses) // 2)
        summary = {"epoch": epoch, "train_loss_first_half": float(np.mean(losses[:half])),
                   "train_loss_second_half": float(np.mean(losses[half:] or losses)), "val_siim_image_map": score.value,
                   "val_ap_opacity": score.per_class.get("opacity", float("nan")), "seconds": time.perf_counter() - t0}
        history.append(summary)
        print(f"epoch {epoch}: train loss {summary['train_loss_first_half']:.3f} -> {summary['train_loss_second_half']:.3f}"
              f" | val SIIM image mAP@0.5 {score.value:.3f} (opacity {summary['val_ap_opacity']:.3f})"
              f" | {summary['seconds']:.0f} s", flush=True)
    out = write_submission(rows, args.submission)
    print(f"submission: {out} ({len(rows)} image rows, boxes in original pixels)")
    return {"history": history, "submission": str(out)}


if __name__ == "__main__":
    main()
