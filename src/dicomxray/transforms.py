"""albumentations presets modelled on what won SIIM-COVID, and the dtype boundary.

Images cross into albumentations as uint8 or float32 in [0, 1] (2-D,
grayscale); boxes as pascal_voc (xyxy pixels) with a ``labels`` field, clipped
to the image, and dropped with their label when less than ``min_visibility`` of
them remains or, after clipping, they are narrower or lower than ``min_size``
pixels (a box pushed off the image comes back zero-wide, which torchvision's
detectors refuse).
Randomness is never drawn from global state: every preset takes a ``seed``
and :class:`~dicomxray.DicomXrayDataset` re-seeds it per DataLoader worker
from ``torch.initial_seed()`` (so ``torch.manual_seed`` makes a run repeatable).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["bbox_params", "to_albumentations_dtype", "to_float", "train_transforms", "val_transforms"]


def _albumentations() -> Any:
    from .io.translate import missing_extra

    try:
        import albumentations as A
    except ImportError:
        raise missing_extra("albumentations", "augmentation") from None
    return A


def bbox_params(min_visibility: float = 0.2, *, min_size: float = 1.0) -> Any:
    """Box handling shared by the presets: xyxy pixels, clipped, labels carried along.

    Parameters
    ----------
    min_visibility : float
        Drop a box (and its label) when less than this fraction of its area stays in the image.
    min_size : float
        Drop a box (and its label) whose width or height, after augmentation and clipping, is
        below this many output pixels; must be > 0, so a zero-wide or zero-high box never
        reaches a detector.
    """
    if not min_size > 0:
        raise ValueError(f"min_size must be > 0 pixels (a zero-sized box is never a valid target), got {min_size!r}")
    A = _albumentations()
    return A.BboxParams(format="pascal_voc", label_fields=["labels"], clip=True, min_visibility=min_visibility,
                        min_width=min_size, min_height=min_size, filter_invalid_bboxes=True)


def train_transforms(size: int, *, strength: float = 1.0, seed: int | None = None) -> Any:
    """Training augmentation for ``size x size`` inputs (what the pipeline already produced).

    Shift-scale-rotate, horizontal flip, brightness/contrast, blur, CLAHE (as
    a random augmentation only), coarse dropout, in the proportions the SIIM
    winners used.  ``strength`` scales the geometric and photometric ranges.
    """
    A = _albumentations()
    s = float(strength)
    return A.Compose(
        [
            A.Affine(scale=(1 - 0.15 * s, 1 + 0.15 * s), translate_percent=(-0.06 * s, 0.06 * s),
                     rotate=(-10 * s, 10 * s), border_mode=0, fill=0, p=0.7),
            A.HorizontalFlip(p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.2 * s, contrast_limit=0.2 * s, p=0.6),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 5))], p=0.2),
            A.CLAHE(clip_limit=(1, 3), tile_grid_size=(8, 8), p=0.2),
            A.CoarseDropout(num_holes_range=(1, 4), hole_height_range=(0.03, 0.1), hole_width_range=(0.03, 0.1),
                            fill=0, p=0.3),
        ],
        bbox_params=bbox_params(),
        seed=seed,
    )


def val_transforms(size: int, *, seed: int | None = None) -> Any:
    """No augmentation; keeps the same box handling so train and val code paths match."""
    A = _albumentations()
    return A.Compose([A.NoOp()], bbox_params=bbox_params(), seed=seed)


def to_albumentations_dtype(image: np.ndarray) -> np.ndarray:
    """uint8 passes through; uint16 becomes float32 in [0, 1]; float32 is checked to lie in [0, 1]."""
    if image.dtype == np.uint8 or image.dtype == np.float32:
        return image
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    raise TypeError(f"albumentations takes uint8 or float32 images, got {image.dtype}")


def to_float(batch: Any, mean: float | None = None, std: float | None = None) -> Any:
    """A uint8 batch (``image_dtype="uint8"``) as float32 in [0, 1] on its device, optionally standardized.

    Move the batch to the GPU first, then convert there: 4x fewer bytes cross the PCIe bus and the
    DataLoader's processes::

        x = to_float(batch["image"].cuda(non_blocking=True), mean=0.5, std=0.25)

    is ``x.float().div_(255)`` then ``sub_(mean).div_(std)``.
    """
    x = batch.float().div_(255.0)
    if mean is not None:
        x.sub_(mean)
    if std is not None:
        x.div_(std)
    return x
