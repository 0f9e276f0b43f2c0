"""A PNG grid of samples with their boxes drawn: what the model will see."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..config import TRAINING_SIZE
from . import _options

__all__ = ["preview_grid"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("preview", help="a PNG grid of samples with their boxes",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("root", help="a DICOM folder or URL prefix, or a SIIM-COVID folder (train/ + CSVs) to draw its boxes")
    p.add_argument("--out", default="preview.png", help="the PNG to write")
    p.add_argument("--count", type=_options.bounded_int(1, 1024), default=16, help="samples to draw")
    p.add_argument("--cols", type=_options.bounded_int(1, 64), default=4, help="tiles per row")
    p.add_argument("--augment", action="store_true", help="show train_transforms output")
    _options.add_remote_options(p, cluster=False)
    _options.add_pipeline_options(p, size_default=TRAINING_SIZE)
    p.set_defaults(func=run)


def _labels_for(root: Path) -> tuple[Path, Any]:
    """A SIIM-COVID folder (CSVs beside ``train/``) gets its labels; any other folder none."""
    from ..labels import SiimCovid

    if (root / "train_image_level.csv").exists() and (root / "train").is_dir():
        return root / "train", SiimCovid(root)
    if (root.parent / "train_image_level.csv").exists():
        return root, SiimCovid(root.parent)
    return root, None


def run(args: argparse.Namespace) -> int:
    from ..data.dataset import DicomXrayDataset
    from ..io.source import is_url
    from ..labels import SIIM_STUDY_CLASSES

    root, labels = (args.root, None) if is_url(args.root) else _labels_for(Path(args.root))
    config = _options.config_from(args)
    transform = None
    if args.augment:
        from ..transforms import train_transforms

        transform = train_transforms(args.size)
    ds = DicomXrayDataset(root, labels=labels, config=config, transform=transform, on_error="skip",
                          storage_options=args.storage_options)
    out = preview_grid(ds, args.out, count=args.count, cols=args.cols,
                       class_names=SIIM_STUDY_CLASSES if labels is not None else None)
    print(f"preview: {out}")
    return 0

_COLOURS = ((255, 64, 64), (64, 200, 255), (255, 200, 0), (120, 255, 120))


def preview_grid(
    dataset: Any,
    path: str | os.PathLike[str],
    *,
    count: int = 16,
    cols: int = 4,
    tile: int = 256,
    indices: list[int] | None = None,
    class_names: tuple[str, ...] | None = None,
) -> Path:
    """Draw ``count`` samples of ``dataset`` (after its transform) with their boxes; write a PNG.

    Each tile shows the image, its mask (tinted) and boxes, and, when known, its class name: what the model sees,
    so a box left without area by clipping is not drawn (the dataset drops it).
    """
    if indices is None:
        indices = list(range(min(count, len(dataset))))
    rows = max(1, -(-len(indices) // cols))
    sheet = Image.new("RGB", (cols * tile, rows * tile), (16, 16, 16))
    draw = ImageDraw.Draw(sheet)
    for n, idx in enumerate(indices):
        sample = dataset[idx]
        img = sample["image"][0].numpy()
        h, w = img.shape
        s = tile / max(h, w)
        im = Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8)).convert("RGB")
        if "mask" in sample:  # segmentation: the union tinted red over the image
            tint = Image.new("RGB", im.size, _COLOURS[0])
            im = Image.composite(Image.blend(im, tint, 0.4), im, Image.fromarray(sample["mask"][0].numpy() * 255))
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)
        ox, oy = (n % cols) * tile, (n // cols) * tile
        sheet.paste(im, (ox, oy))
        boxes = sample.get("boxes")
        labels = sample.get("labels")
        if boxes is not None:
            for b, lab in zip(boxes.numpy(), labels.numpy(), strict=True):
                x0, y0, x1, y1 = (float(v) * s for v in b)
                draw.rectangle([ox + x0, oy + y0, ox + x1, oy + y1], outline=_COLOURS[int(lab) % 4], width=2)
        label = int(sample["image_label"]) if "image_label" in sample else -1
        text = class_names[label] if class_names and 0 <= label < len(class_names) else ""
        draw.text((ox + 4, oy + 4), f"{idx} {text}", fill=(255, 255, 0))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
