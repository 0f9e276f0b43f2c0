"""SIIM-COVID study-level classification (negative / typical / indeterminate / atypical), end to end on CPU.

    python examples/train_classifier.py                      # synthetic SIIM-style data, generated once
    python examples/train_classifier.py --data /kaggle/siim  # the real competition folder (train/ + CSVs)

DicomXrayDataset + cache + train_transforms, folds grouped by patient and stratified by class, a small CNN in plain
torch (``--timm NAME`` uses a timm model if timm is installed), validation loss/accuracy and the competition's
study-level mAP@0.5 per epoch, a checkpoint.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import SmallBackbone, ensure_data, pick_device, train_one_epoch
from torch import nn
from torch.utils.data import DataLoader, Subset

from dicomxray import DicomXrayDataset
from dicomxray.labels import SIIM_STUDY_CLASSES, SiimCovid, parse_prediction_string, patient_folds, study_prediction_string
from dicomxray.labels.metrics import siim_map, siim_truth
from dicomxray.labels.splits import read_patient_ids
from dicomxray.transforms import train_transforms, val_transforms


class Classifier(nn.Module):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.backbone = SmallBackbone()
        self.head = nn.Linear(self.backbone.out_channels[1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, deep = self.backbone(x)
        return self.head(deep.mean(dim=(2, 3)))


def evaluate(model: nn.Module, loader: DataLoader, labels: SiimCovid, device: torch.device) -> dict[str, float]:
    """Validation loss, accuracy and the competition's study-level mAP (images' probabilities averaged per study)."""
    model.eval()
    losses, probs, targets, keys = [], [], [], []
    with torch.no_grad():
        for batch in loader:
            logits = model(batch["image"].to(device))
            y = batch["image_label"].to(device)
            losses.append(nn.functional.cross_entropy(logits, y, reduction="sum").item())
            probs.append(logits.softmax(1).cpu().numpy())
            targets.append(y.cpu().numpy())
            keys += [m["sop_instance_uid"] for m in batch["meta"]]
    p, t = np.concatenate(probs), np.concatenate(targets)
    per_study: dict[str, list[np.ndarray]] = {}
    for key, row in zip(keys, p, strict=True):
        target = labels.target(key)
        per_study.setdefault(target.study_id if target is not None else key, []).append(row)
    predictions = {f"{s}_study": parse_prediction_string(study_prediction_string(np.mean(rows, 0).tolist()), "siim")
                   for s, rows in per_study.items()}
    truth = {k: v for k, v in siim_truth(labels, keys).items() if k.endswith("_study")}
    score = siim_map(predictions, truth)
    return {"loss": sum(losses) / len(t), "accuracy": float((p.argmax(1) == t).mean()), "study_map": score.value}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="SIIM folder (train/ + CSVs); default: synthetic")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=None, help="stop each epoch after this many steps (smoke tests)")
    ap.add_argument("--cache-dir", type=Path, default=Path("demo_out") / "cache")
    ap.add_argument("--out", type=Path, default=Path("checkpoints"))
    ap.add_argument("--timm", default=None, help="a timm model name instead of the small CNN (needs timm)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    data = ensure_data(args.data)
    labels = SiimCovid(data)
    train_ds = DicomXrayDataset(data / "train", labels=labels, size=args.size, cache=args.cache_dir,
                                transform=train_transforms(args.size), on_error="skip")
    val_ds = DicomXrayDataset(data / "train", labels=labels, size=args.size, cache=args.cache_dir,
                              transform=val_transforms(args.size), on_error="skip")
    classes = [labels.target(Path(f).stem).image_label for f in train_ds.files]
    folds = patient_folds(read_patient_ids(train_ds.files), classes, k=args.folds, seed=args.seed)
    train_idx = [i for i, f in enumerate(folds) if f != args.fold]
    val_idx = [i for i, f in enumerate(folds) if f == args.fold]
    print(f"{len(train_idx)} training / {len(val_idx)} validation images (fold {args.fold} of {args.folds}, "
          "grouped by patient)")
    train_loader = DataLoader(Subset(train_ds, train_idx), batch_size=args.batch_size, shuffle=True,
                              num_workers=args.workers, collate_fn=train_ds.collate, drop_last=True)
    val_loader = DataLoader(Subset(val_ds, val_idx), batch_size=args.batch_size, num_workers=args.workers,
                            collate_fn=val_ds.collate)
    device = pick_device()
    if args.timm:
        import timm

        model: nn.Module = timm.create_model(args.timm, pretrained=False, num_classes=4, in_chans=1)
    else:
        model = Classifier(len(SIIM_STUDY_CLASSES))
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    history = []
    def loss_fn(batch: dict) -> torch.Tensor:
        return nn.functional.cross_entropy(model(batch["image"].to(device)), batch["image_label"].to(device))

    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        losses = train_one_epoch(model, train_loader, opt, loss_fn, epoch=epoch, max_steps=args.max_steps)
        metrics = evaluate(model, val_loader, labels, device)
        half = max(1, len(losses) // 2)
        summary = {"epoch": epoch, "train_loss_first_half": float(np.mean(losses[:half])),
                   "train_loss_second_half": float(np.mean(losses[half:] or losses)), **metrics,
                   "seconds": time.perf_counter() - t0}
        history.append(summary)
        print(f"epoch {epoch}: train loss {summary['train_loss_first_half']:.3f} -> {summary['train_loss_second_half']:.3f}"
              f" | val loss {metrics['loss']:.3f} acc {metrics['accuracy']:.3f} SIIM study mAP@0.5 {metrics['study_map']:.3f}"
              f" | {summary['seconds']:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = args.out / "classifier.pt"
    torch.save({"model": model.state_dict(), "size": args.size, "classes": SIIM_STUDY_CLASSES, "history": history}, ckpt)
    print(f"checkpoint: {ckpt}")
    return {"history": history, "checkpoint": str(ckpt)}


if __name__ == "__main__":
    main()
