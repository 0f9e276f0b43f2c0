"""Arrays to tensors and samples to batches: the last step of :class:`dicomxray.DicomXrayDataset`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["collate", "stack_ready", "to_tensor"]


def to_tensor(pixels: np.ndarray, image_dtype: str, channels: int) -> torch.Tensor:
    """The image as a ``C x H x W`` tensor of ``image_dtype``.

    When the array already has that dtype (a uint8 transport of a uint8 render, or a float32 render)
    and is the sample's own (a fresh decode or cache read), the tensor wraps it without a copy; the
    RAM tier's shared images are copied.  Converting uint8 to float32 allocates anyway.
    """
    arr = np.asarray(pixels)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    t = _view(arr)
    if image_dtype == "uint8":
        if t.dtype != torch.uint8:
            raise ValueError(f"image_dtype='uint8' needs uint8 images, the pipeline/transform gave {arr.dtype}")
    elif t.dtype == torch.uint8:
        t = t.to(torch.float32).div_(255.0)  # the same arithmetic as transforms.to_float
    elif t.dtype != torch.float32:
        t = t.to(torch.float32).mul_(1 / float(np.iinfo(arr.dtype).max))
    t = t.unsqueeze(0)
    return t.expand(3, -1, -1).contiguous() if channels == 3 else t


def _view(arr: np.ndarray) -> torch.Tensor:
    """The array as a tensor: zero-copy when the array is the sample's own (a fresh decode or cache read),
    a copy when it is shared and read-only (the RAM tier), so nothing written into a sample reaches it."""
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())


def _ready_batch(tensors: Sequence[Any]) -> torch.Tensor | None:
    """The ``B x ...`` tensor ``tensors`` are consecutive whole views of, when it is the images of a batch of
    :func:`dicomxray.data.batches.batch_samples` (never a user's tensor that happens to be laid out so), or ``None``."""
    first = tensors[0] if tensors else None
    base = first._base if isinstance(first, torch.Tensor) else None
    if base is None or not getattr(base, "dicomxray_batch", False) or base.numel() != len(tensors) * first.numel():  # type: ignore[union-attr]
        return None
    shape, step, at = first.shape, first.numel() * first.element_size(), base.data_ptr()  # type: ignore[union-attr]
    for t in tensors:
        if (not isinstance(t, torch.Tensor) or t._base is not base or t.data_ptr() != at or t.shape != shape
                or not t.is_contiguous()):
            return None
        at += step
    return base.view(len(tensors), *first.shape)  # type: ignore[union-attr]


def stack_ready(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``torch.stack(tensors)``, or without a copy the tensor they are consecutive views of when they are the
    images of one batch of :func:`dicomxray.data.batches.batch_samples`."""
    ready = _ready_batch(tensors)
    return ready if ready is not None else torch.stack(list(tensors))


#: Fields kept per image (their sizes differ between images); every other tensor field is stacked.
PER_IMAGE = frozenset({"boxes", "labels", "masks", "meta"})


def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Detection and segmentation collate: one stacked tensor per field (``image`` ``B x C x H x W``,
    ``image_label`` ``B``, ``image_labels`` ``B x K``, ``mask`` ``B x 1 x H x W``, and any tensor of one shape a
    ``target_transform`` adds), per-image lists for ``boxes``, ``labels``, ``masks`` and ``meta``."""
    out: dict[str, Any] = {}
    for key in batch[0] if batch else ("image", "meta"):
        values = [s[key] for s in batch]
        stack = (key not in PER_IMAGE and all(isinstance(v, torch.Tensor) for v in values)
                 and len({v.shape for v in values}) == 1)
        out[key] = stack_ready(values) if stack else values
    return out
