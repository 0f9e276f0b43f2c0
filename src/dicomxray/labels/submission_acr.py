"""SIIM-ACR Pneumothorax's submission: ``ImageId,EncodedPixels``, one combined mask per image, checked before writing."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .rle import EMPTY_RLE, parse_rle, siim_acr_rle
from .submission_checks import check_ids, rows_of, sample_ids, size_of

_ID, _VALUE = "ImageId", "EncodedPixels"


def check_rle(value: Any, row_id: str, size: tuple[float, float] | None) -> str:
    """The row's run-length string, checked: well-formed, ``-1`` when empty, inside a ``size = (width, height)`` image.

    ``value`` is a run-length string or an ``H x W`` mask (encoded here, its shape checked against ``size``).
    """
    where = f" (row {row_id!r})"
    if hasattr(value, "shape") and not isinstance(value, str):
        mask = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        mask = mask[0] if mask.ndim == 3 and mask.shape[0] == 1 else mask
        if mask.ndim != 2:
            raise ValueError(f"a siim-acr mask is one H x W plane, got shape {mask.shape}{where}")
        if size is not None and (mask.shape[1], mask.shape[0]) != (int(size[0]), int(size[1])):
            raise ValueError(f"mask of {mask.shape[0]} x {mask.shape[1]} (H x W) for a {size[0]:g} x {size[1]:g} "
                             f"(W x H) image{where}: map it back to the original pixels first")
        return siim_acr_rle(mask)
    text = str(value).strip()
    if not text:
        raise ValueError(f"empty or missing siim-acr EncodedPixels{where}: write {EMPTY_RLE!r} for an empty mask")
    try:
        pairs = parse_rle(text)
    except ValueError as exc:
        raise ValueError(f"{exc}{where}") from None
    if size is not None and len(pairs):
        end, n = int(pairs.sum()), int(size[0]) * int(size[1])
        if end > n:
            raise ValueError(f"runs end at pixel {end}, outside the {size[0]:g} x {size[1]:g} image ({n} pixels){where}")
    return " ".join(text.split())


def write_siim_acr(
    rows: Iterable[tuple[str, Any]] | Any, path: str | os.PathLike[str], *, expected_ids: Iterable[str] | None,
    sample_submission: str | os.PathLike[str] | None, image_sizes: Mapping[str, tuple[float, float]] | None,
) -> Path:
    """Check every row (:func:`check_rle`, the ids) and write ``ImageId,EncodedPixels``; nothing is written on a refusal."""
    if expected_ids is not None and sample_submission is not None:
        raise ValueError("give expected_ids or sample_submission, not both")
    if sample_submission is not None:
        expected_ids = sample_ids(sample_submission, _ID)
    pairs = rows_of(rows, _ID, _VALUE)
    check_ids([i for i, _ in pairs], expected_ids, "siim-acr")
    checked = [(row_id, check_rle(value, row_id, size_of(image_sizes, row_id))) for row_id, value in pairs]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([_ID, _VALUE])
        writer.writerows(checked)
    return out


def read_siim_acr_submission(path: str | os.PathLike[str]) -> dict[str, str]:
    """A SIIM-ACR submission back as ``{ImageId: run-length string}``, every row checked (header, runs, duplicates).

    Decode a row with :func:`~dicomxray.labels.siim_acr_mask`, or score the mapping with
    :func:`~dicomxray.labels.metrics.siim_acr_dice` directly.
    """
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        if header != [_ID, _VALUE]:
            raise ValueError(f"{path}: siim-acr header is {_ID},{_VALUE}, got {header}")
        out: dict[str, str] = {}
        for row in reader:
            if len(row) != 2:
                raise ValueError(f"{path}:{reader.line_num}: expected 2 columns, got {len(row)}")
            key = row[0].strip()
            if key in out:
                raise ValueError(f"{path}:{reader.line_num}: duplicate id {key!r}")
            try:
                out[key] = check_rle(row[1], key, None)
            except ValueError as exc:
                raise ValueError(f"{path}:{reader.line_num}: {exc}") from None
    return out
