"""A PNG grid of samples with their boxes drawn: what the model will see."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["preview_grid"]

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

    Each tile shows the image, its boxes in red and, when known, its class name.
    Skipped samples (``on_error="skip"``) leave a dark tile.
    """
    if indices is None:
        indices = list(range(min(count, len(dataset))))
    rows = max(1, -(-len(indices) // cols))
    sheet = Image.new("RGB", (cols * tile, rows * tile), (16, 16, 16))
    draw = ImageDraw.Draw(sheet)
    for n, idx in enumerate(indices):
        sample = dataset[idx]
        if sample is None:
            continue
        img = sample["image"][0].numpy()
        h, w = img.shape
        s = tile / max(h, w)
        im = Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8)).convert("RGB")
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
