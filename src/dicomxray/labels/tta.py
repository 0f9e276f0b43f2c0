"""Horizontal-flip test-time augmentation: predictions on a flipped batch mapped back to the image.

Boxes stay in the model's output pixels here; map them to original pixels afterwards with
:func:`~dicomxray.labels.boxes_to_original_batch`, then fuse the two passes per image with
:meth:`~dicomxray.labels.BoxFusion.fuse_scored` (``models=`` tells the passes apart).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["hflip", "hflip_tta", "unflip_boxes"]


def hflip(images: Any) -> Any:
    """The batch mirrored left-right (last axis): a torch tensor stays a tensor, an array an array."""
    if hasattr(images, "flip"):
        return images.flip(-1)
    return np.ascontiguousarray(np.asarray(images)[..., ::-1])


def unflip_boxes(boxes: Any, width: float) -> np.ndarray:
    """``N x 4`` xyxy boxes predicted on a mirrored image, in the unmirrored image's pixels.

    Parameters
    ----------
    boxes : array-like
        ``N x 4`` xyxy in the flipped image's pixels (numpy or a tensor on any device).
    width : float
        The image width the model saw (``images.shape[-1]``).

    Returns
    -------
    numpy.ndarray
        ``N x 4`` float64: ``x0 = width - x1``, ``x1 = width - x0``; ``y`` unchanged.
    """
    b = np.asarray(boxes.detach().cpu() if hasattr(boxes, "detach") else boxes, np.float64).reshape(-1, 4)
    return np.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], axis=1)


def hflip_tta(predict: Callable[[Any], Sequence[dict[str, Any]]], images: Any) -> list[dict[str, np.ndarray]]:
    """Run ``predict`` on the batch and on its mirror; per image, both passes' predictions together.

    Parameters
    ----------
    predict : callable
        ``images -> [{"boxes": N x 4 xyxy, "scores": N, "labels": N}, ...]`` (torchvision's
        detectors in eval mode), boxes in the input's pixels.
    images : tensor or array
        ``B x C x H x W`` (or ``B x H x W``) batch.

    Returns
    -------
    list of dict
        Per image ``boxes`` (float64, unflipped), ``scores``, ``labels`` and ``models`` (0 for the
        plain pass, 1 for the mirrored one), in the model's output pixels.
    """
    width = float(images.shape[-1])
    plain, mirrored = predict(images), predict(hflip(images))
    if len(plain) != len(mirrored):
        raise ValueError(f"predict gave {len(plain)} results for the batch and {len(mirrored)} for its mirror")
    out = []
    for a, b in zip(plain, mirrored, strict=True):
        sa, sb = _np(a["scores"]).reshape(-1), _np(b["scores"]).reshape(-1)
        out.append({
            "boxes": np.concatenate([_np(a["boxes"]).reshape(-1, 4), unflip_boxes(b["boxes"], width)]),
            "scores": np.concatenate([sa, sb]),
            "labels": np.concatenate([_np(a["labels"]).reshape(-1), _np(b["labels"]).reshape(-1)]).astype(np.int64),
            "models": np.repeat(np.array([0, 1], np.int64), [len(sa), len(sb)]),
        })
    return out


def _np(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, np.float64)
