"""A grid of images with their boxes, before and after augmentation.

    python examples/preview.py [--data SIIM_FOLDER] [--out demo_out]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import ensure_data

from dicomxray import DicomXrayDataset
from dicomxray.cli.preview import preview_grid
from dicomxray.labels import SIIM_STUDY_CLASSES, SiimCovid
from dicomxray.transforms import train_transforms


def main(argv: list[str] | None = None) -> list[Path]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--out", type=Path, default=Path("demo_out"))
    args = ap.parse_args(argv)
    data = ensure_data(args.data)
    labels = SiimCovid(data)
    outs = []
    for name, transform in (("before", None), ("after", train_transforms(args.size))):
        ds = DicomXrayDataset(data / "train", labels=labels, size=args.size, transform=transform, on_error="skip")
        outs.append(preview_grid(ds, args.out / f"preview_{name}.png", count=8, cols=4, class_names=SIIM_STUDY_CLASSES))
        print(f"{name} augmentation: {outs[-1]}")
    return outs


if __name__ == "__main__":
    main()
