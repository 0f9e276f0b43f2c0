"""Multi-label findings with uncertain and unmentioned labels, end to end on CPU: mean AUC over the known labels.

    python examples/train_multilabel.py            # a synthetic folder + findings CSV, generated once
    python examples/train_multilabel.py --data DIR  # DIR/images/*.dcm + DIR/findings.csv (key, one column per finding)

The CSV holds, per image and finding, 1 (present), 0 (absent), -1 (uncertain, as the CheXpert labeler writes it) or
nothing (not mentioned).  ``CsvLabels(csv, key="key")`` reads it (a hospital's own CSV: a key column of file stems,
names or relative paths, one column per finding) and maps both unknowns to NaN (``uncertain=``/``unmentioned=``
choose otherwise); the dataset hands ``image_labels`` (``K`` float32) to every sample and ``ds.collate`` stacks them
as ``B x K``; the loss counts the known entries only, and so does the AUC.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from _common import SmallBackbone, pick_device, small_task_args, train_one_epoch
from torch import nn
from torch.utils.data import DataLoader, Subset

from dicomxray import DicomXrayDataset
from dicomxray.labels import CsvLabels
from dicomxray.testing import chest_phantom, write_dicom

FINDINGS = ("Nodule", "Effusion", "Cardiomegaly")
def make_folder(root: Path, images: int = 48, seed: int = 0) -> Path:
    """Films whose findings are drawn in: a bright disc (nodule), a bright base (effusion), a wide heart."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:256, :224]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "findings.csv", "w") as fh:
        fh.write("key," + ",".join(FINDINGS) + "\n")
        for i in range(images):
            img = chest_phantom(256, 224, bits=12, seed=i).astype(np.float32)
            truth = rng.random(3) < 0.4
            if truth[0]:
                cy, cx = rng.integers(40, 140), rng.integers(30, 190)
                img[(yy - cy) ** 2 + (xx - cx) ** 2 < 15**2] = 3900
            if truth[1]:
                img[210:, :] = np.maximum(img[210:, :], 3500)
            if truth[2]:
                img[120:200, 60:164] = np.maximum(img[120:200, 60:164], 3000)
            write_dicom(root / "images" / f"img{i:03d}.dcm", img.astype(np.uint16), bits_stored=12)
            noisy = rng.random(3)
            cells = ["-1" if u < 0.12 else "" if u < 0.2 else str(int(t)) for t, u in zip(truth, noisy, strict=True)]
            fh.write(f"img{i:03d}," + ",".join(cells) + "\n")
    return root


def masked_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over the known labels only (NaN = uncertain or not mentioned)."""
    known = ~torch.isnan(target)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, torch.nan_to_num(target), reduction="none")
    return (loss * known).sum() / known.sum().clamp(min=1)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by ranks (Mann-Whitney U); NaN when one class is missing."""
    pos, neg = labels == 1, labels == 0
    if not pos.any() or not neg.any():
        return float("nan")
    ranks = np.empty(len(scores))
    ranks[np.argsort(scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return float((ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * neg.sum()))


class Classifier(nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.backbone = SmallBackbone(width=8)
        self.head = nn.Linear(self.backbone.out_channels[1], k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[1].mean(dim=(2, 3)))


def main(argv: list[str] | None = None) -> int:
    args = small_task_args(argv, __doc__, epochs=4, cache="cache-multilabel")
    torch.manual_seed(0)
    data = args.data
    if data is None:
        data = Path("demo_out") / "multilabel-examples"
        if not (data / "findings.csv").exists():
            make_folder(data)
    labels = CsvLabels(data / "findings.csv", key="key")  # one column per finding: 1, 0, -1 (uncertain) or blank
    ds = DicomXrayDataset(data / "images", labels=labels, size=args.size, cache=args.cache_dir)
    order = np.random.default_rng(0).permutation(len(ds))
    held = max(4, len(order) // 3)
    train = DataLoader(Subset(ds, order[held:].tolist()), batch_size=args.batch_size, shuffle=True,
                       collate_fn=ds.collate)
    val = DataLoader(Subset(ds, order[:held].tolist()), batch_size=args.batch_size, collate_fn=ds.collate)
    device = pick_device()
    names = labels.multilabel_classes  # the CSV's finding columns, in its order
    model = Classifier(len(names)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_fn(batch: dict) -> torch.Tensor:
        return masked_bce(model(batch["image"].to(device)), batch["image_labels"].to(device))

    for epoch in range(args.epochs):
        train_one_epoch(model, train, opt, loss_fn, epoch=epoch, max_steps=args.max_steps)
        model.eval()
        scores, truth = [], []
        with torch.no_grad():
            for batch in val:
                scores.append(model(batch["image"].to(device)).sigmoid().cpu().numpy())
                truth.append(batch["image_labels"].numpy())  # B x K, NaN where unknown
        s, t = np.concatenate(scores), np.concatenate(truth)
        per_class = [auc(s[~np.isnan(t[:, k]), k], t[~np.isnan(t[:, k]), k]) for k in range(len(names))]
        known = [a for a in per_class if not np.isnan(a)]
        text = ", ".join(f"{n} {a:.2f}" for n, a in zip(names, per_class, strict=True))
        print(f"epoch {epoch} val mean AUC {np.mean(known) if known else float('nan'):.3f} ({text})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
