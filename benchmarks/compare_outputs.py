"""Bit-equality of ``read_xray`` between two checkouts, on every real film of a samples folder.

Every film of ``SAMPLES.tsv`` at sizes 256, 512 and 1024 (and full size), in the three geometry modes, the three
normalizations and the three output dtypes, with the default decoders.  Run it once with the reference checkout
first on ``PYTHONPATH`` to save its outputs, then with the checkout under test to compare::

    PYTHONPATH=/path/to/reference/src python -m benchmarks.compare_outputs --save ref.npz
    PYTHONPATH=src python -m benchmarks.compare_outputs --against ref.npz

A film that fails names its error in both runs; the comparison fails on any differing pixel, shape, dtype or
error.  ``--samples`` (default ``../shared/dicom-samples`` beside the checkout) is the folder.
"""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from pathlib import Path

import numpy as np

import dicomxray
from dicomxray import pipeline_config, read_xray

ROOT = Path(__file__).resolve().parent.parent
SIZES = (None, 256, 512, 1024)
MODES = ("square", "keep_ratio", "letterbox")
NORMALIZATIONS = ("minmax", "window", "percentile")
DTYPES = ("uint8", "uint16", "float32")


def outputs(samples: Path) -> dict[str, np.ndarray | str]:
    """``{case: image or "error: <class>"}`` for every film, size, mode, normalization and dtype."""
    with open(samples / "SAMPLES.tsv") as fh:
        names = [row["file"] for row in csv.DictReader(fh, delimiter="\t")]
    got: dict[str, np.ndarray | str] = {}
    for name in names:
        for size in SIZES:
            for mode in MODES if size else ("square",):
                for norm in NORMALIZATIONS:
                    for dtype in DTYPES:
                        key = f"{name}|{size}|{mode}|{norm}|{dtype}"
                        cfg = pipeline_config(size=size, keep_ratio=mode == "keep_ratio",
                                              letterbox=mode == "letterbox", normalize=norm, dtype=dtype)
                        try:
                            got[key] = read_xray(samples / name, config=cfg)
                        except dicomxray.DicomXrayError as exc:
                            got[key] = f"error: {type(exc).__name__}"
    return got


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=Path, default=ROOT.parent / "shared" / "dicom-samples")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path, help="write this checkout's outputs here (.npz)")
    group.add_argument("--against", type=Path, help="compare this checkout's outputs with a saved run")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    got = outputs(args.samples)
    print(f"dicomxray from {Path(dicomxray.__file__).parent}: {len(got)} cases")
    if args.save:
        np.savez_compressed(args.save, **{k: np.asarray(v) for k, v in got.items()})
        print(f"saved {args.save}")
        return 0
    ref = dict(np.load(args.against))
    differ = []
    for key in sorted(set(ref) | set(got)):
        a, b = ref.get(key), got.get(key)
        b = None if b is None else np.asarray(b)
        if a is None or b is None or a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b):
            differ.append(key)
    films = {k.split("|")[0] for k in got}
    errors = sum(isinstance(v, str) for v in got.values())
    print(f"{len(films)} films, {len(got)} cases ({errors} the same named error in both): "
          f"{len(got) - len(differ)} bit-identical, {len(differ)} differ")
    for key in differ[:20]:
        print("  differs:", key)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
