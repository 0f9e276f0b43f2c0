"""A dependency-free horizontal bar chart (Pillow), so the suite needs no matplotlib."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw


def bar_chart(labels: list[str], values: list[float], path: Path, *, title: str = "", unit: str = "x") -> Path:
    width, bar_h, left, top = 900, 26, 190, 40
    height = top + bar_h * len(labels) + 30
    im = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(im)
    d.text((10, 10), title, fill="black")
    vmax = max(values) if values else 1.0
    span = width - left - 80
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        y = top + i * bar_h
        d.text((10, y + 6), lab, fill="black")
        w = int(span * v / vmax)
        d.rectangle([left, y + 3, left + w, y + bar_h - 3], fill=(60, 120, 200))
        d.text((left + w + 6, y + 6), f"{v:.1f}{unit}", fill="black")
    x1 = left + int(span * 1.0 / vmax)
    d.line([x1, top, x1, height - 25], fill=(200, 0, 0))
    d.text((x1 + 3, height - 22), "classic = 1x", fill=(200, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path
