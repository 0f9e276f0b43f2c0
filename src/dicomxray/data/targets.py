"""A sample's targets in output pixels: boxes, class, multi-label findings and masks, through the image's geometry
and its augmentation (one call of the transform for every field), boxes without area dropped with their labels."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..labels.base import LabelSource, Target
from ..labels.submission import unbatch_meta
from ..pixels.geometry import Geometry, boxes_to_output, mask_to_original, masks_to_output
from ..transforms import to_albumentations_dtype

__all__ = ["Tasks", "masks_to_original_batch", "sample_targets", "tasks_of"]

_PROBE = 64  # targets looked at to learn whether a source has masks


@dataclass(frozen=True)
class Tasks:
    """What a label source gives every sample beyond boxes and class: ``multilabel`` (the names of
    ``image_labels``' entries; empty for none) and ``masks`` (``mask`` and ``masks`` fields)."""

    multilabel: tuple[str, ...] = ()
    masks: bool = False


def tasks_of(labels: LabelSource | None, keys: Sequence[str]) -> Tasks:
    """The fields the samples of ``labels`` carry: multi-labels when it names ``multilabel_classes``, masks when
    any of the first targets has a :class:`~dicomxray.labels.MaskSource` (then every sample has a mask, empty
    where its target has none)."""
    if labels is None:
        return Tasks()
    names = tuple(getattr(labels, "multilabel_classes", None) or ())
    masks = any(getattr(labels.target(k), "masks", None) is not None for k in keys[:_PROBE])
    return Tasks(names, masks)


def has_box_processor(transform: Callable[..., Any] | None) -> bool:
    """Whether ``transform`` moves boxes: albumentations' ``Compose`` with ``bbox_params`` (a third-party
    attribute), or any other callable (it is given the boxes and trusted with them)."""
    processors = getattr(transform, "processors", None)
    return not isinstance(processors, dict) or "bboxes" in processors


def sample_targets(
    pixels: np.ndarray, geom: Geometry, target: Target | None, tasks: Tasks,
    transform: Callable[..., dict[str, Any]] | None, key: str,
) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    """The (augmented) image and its targets as tensors: ``boxes`` (``N x 4`` float32 xyxy, each with area),
    ``labels`` (``N`` int64), ``image_label`` (int64), ``image_labels`` (``K`` float32, NaN unknown) when the
    source names findings, ``mask`` (``1 x H x W`` uint8 union) and ``masks`` (``M x H x W`` uint8 instances) when
    it has masks.

    Where the target has no boxes but mask instances, each instance's box (labelled ``mask_label``) is taken
    around the instance after augmentation, and an instance pushed off the image goes with its box; where it has
    as many boxes as instances, they are paired, and a box the transform drops drops its instance.

    Raises
    ------
    ValueError
        Multi-labels of the wrong length, masks of the wrong size, boxes and instances that do not pair, or boxes
        given to a transform that does not move them (naming ``key``).
    """
    t = target if target is not None else Target()
    boxes = boxes_to_output(t.boxes, geom).astype(np.float32)
    labels = np.asarray(t.box_labels, np.int64).reshape(-1)
    instances = _instances(t, geom, key) if tasks.masks else None
    derived = instances is not None and len(instances) > 0 and len(boxes) == 0
    if instances is not None and len(boxes) and len(instances) not in (0, len(boxes)):
        raise ValueError(f"{key}: {len(boxes)} boxes and {len(instances)} mask instances do not pair")
    paired = instances is not None and len(boxes) > 0 and len(instances) == len(boxes)
    if transform is not None:
        pixels, boxes, labels, instances, union = _augment(pixels, boxes, labels, instances, paired, transform, key)
    else:
        union = None
    h, w = np.asarray(pixels).shape[:2]
    if derived and instances is not None:
        boxes, keep = _boxes_around(instances)
        instances, labels = instances[keep], np.full(len(boxes), t.mask_label, np.int64)
    keep = _with_area(boxes, h, w)
    if not keep.all():
        boxes, labels = boxes[keep], labels[keep]
        if paired and instances is not None:
            instances = instances[keep]
    out = {"boxes": torch.from_numpy(np.ascontiguousarray(np.clip(boxes, 0, [w, h, w, h]), np.float32)),
           "labels": torch.from_numpy(np.ascontiguousarray(labels)),
           "image_label": torch.tensor(t.image_label, dtype=torch.int64)}
    if tasks.multilabel:
        out["image_labels"] = torch.from_numpy(_multilabels(t, len(tasks.multilabel), key))
    if instances is not None:
        if union is None:
            union = _union(instances, h, w)
        out["mask"] = torch.from_numpy(np.ascontiguousarray(union, np.uint8)[None])
        out["masks"] = torch.from_numpy(np.ascontiguousarray(instances, np.uint8))
    return pixels, out


def _instances(t: Target, geom: Geometry, key: str) -> np.ndarray:
    if t.masks is None:
        return np.zeros((0, geom.height, geom.width), np.uint8)
    planes = np.asarray(t.masks.instances(geom.original_height, geom.original_width))
    if planes.ndim != 3 or planes.shape[1:] != (geom.original_height, geom.original_width):
        raise ValueError(f"{key}: masks of shape {planes.shape} for an image of "
                         f"{geom.original_height} x {geom.original_width} (N x Rows x Columns expected)")
    return masks_to_output(planes, geom)


def _augment(pixels: np.ndarray, boxes: np.ndarray, labels: np.ndarray, instances: np.ndarray | None,
             paired: bool, transform: Callable[..., dict[str, Any]], key: str
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """One call of ``transform`` for the image, boxes, union mask and instances together."""
    arr = np.asarray(pixels)
    arr = arr if arr.flags.writeable else arr.copy()  # the RAM tier's images are shared
    args: dict[str, Any] = {"image": to_albumentations_dtype(arr)}
    moves_boxes = has_box_processor(transform)
    if moves_boxes:  # paired instances ride along as a fifth box column: the boxes that survive name theirs
        args["bboxes"] = np.column_stack([boxes, np.arange(len(boxes))]) if paired else boxes
        args["labels"] = labels
    elif len(boxes):
        raise ValueError(f"{key} has boxes, and the transform does not move them: build it with "
                         "bbox_params=dicomxray.transforms.bbox_params()")
    if instances is not None:
        args["mask"] = _union(instances, *arr.shape[:2])
        if len(instances):
            args["masks"] = instances
    out = transform(**args)
    pixels = out["image"]
    h, w = np.asarray(pixels).shape[:2]
    union = None
    if instances is not None:
        union = np.asarray(out.get("mask", args["mask"]), np.uint8)
        instances = np.asarray(out["masks"], np.uint8).reshape(-1, h, w) if len(instances) \
            else np.zeros((0, h, w), np.uint8)
    if moves_boxes:
        cols = 5 if paired else 4
        moved = np.asarray(out.get("bboxes", args["bboxes"]), np.float64)
        moved = moved.reshape(-1, cols) if moved.size else np.zeros((0, cols))
        if paired and instances is not None:
            instances = instances[moved[:, 4].astype(np.intp)]
        boxes = moved[:, :4].astype(np.float32)
        labels = np.asarray(out.get("labels", labels), np.int64).reshape(-1)
    return pixels, boxes, labels, instances, union


def _union(instances: np.ndarray, h: int, w: int) -> np.ndarray:
    if len(instances) == 1:
        return instances[0]
    return instances.max(axis=0) if len(instances) else np.zeros((h, w), np.uint8)


def _boxes_around(instances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The xyxy box (pixel edges) around each non-empty instance, and which instances are non-empty."""
    rows: np.ndarray = np.any(instances, axis=2)
    cols: np.ndarray = np.any(instances, axis=1)
    keep: np.ndarray = np.any(rows, axis=1)
    boxes = np.zeros((int(keep.sum()), 4), np.float32)
    for n, (r, c) in enumerate(zip(rows[keep], cols[keep], strict=True)):
        ys, xs = np.flatnonzero(r), np.flatnonzero(c)
        boxes[n] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes, keep


def _with_area(boxes: np.ndarray, h: int, w: int) -> np.ndarray:
    """Which boxes keep a width and a height once clipped to the ``h x w`` image (a box pushed off it has none)."""
    b = np.clip(boxes.reshape(-1, 4), 0, [w, h, w, h])
    return np.asarray((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]), bool)


def _multilabels(t: Target, k: int, key: str) -> np.ndarray:
    got = np.asarray(t.image_labels, np.float32).reshape(-1)
    if got.size == 0:
        return np.full(k, np.nan, np.float32)  # an image without findings listed: every one unknown
    if got.size != k:
        raise ValueError(f"{key}: {got.size} multi-labels, the source names {k} multilabel_classes")
    return got.copy()


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
