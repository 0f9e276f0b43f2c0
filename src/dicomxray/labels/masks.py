"""Predicted masks back on each image's own pixels, for submissions and metrics (the masks' counterpart of
:func:`~dicomxray.labels.boxes_to_original_batch`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..pixels.geometry import Geometry, mask_to_original
from .submission import unbatch_meta

__all__ = ["mask_to_original", "masks_to_original_batch"]


def masks_to_original_batch(masks: Any, meta: Mapping[str, Any] | Sequence[Mapping[str, Any]], *,
                            threshold: float = 0.5) -> list[np.ndarray]:
    """Each sample's predicted mask back on its image's own pixels (Rows x Columns), as ``boxes_to_original_batch``
    does for boxes: ``masks`` is ``B x 1 x H x W`` (or ``B x H x W``, or a list) of probabilities or 0/1 values, in
    the model's input pixels; ``meta`` is ``batch["meta"]`` from either collate.  Per sample an ``H x W`` bool array
    (:func:`dicomxray.pixels.geometry.mask_to_original`), ready for a run-length encoding."""
    rows = unbatch_meta(meta)
    if len(rows) != len(masks):
        raise ValueError(f"{len(masks)} masks for a batch of {len(rows)} samples")
    return [mask_to_original(m, Geometry.from_record(row["geometry"]), threshold=threshold)
            for m, row in zip(masks, rows, strict=True)]
