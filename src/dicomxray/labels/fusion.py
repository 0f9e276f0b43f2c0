"""Fusing near-duplicate boxes of several readers (VinBigData's three radiologists).

VinBigData has each image read by three radiologists, so one finding often comes
as two or three boxes that nearly coincide.  Winning solutions fused them before
training, by weighted boxes fusion (Solovyev et al. 2021, arXiv:1910.13302) or by
NMS per class.  :class:`BoxFusion` does either, with a minimum number of readers
who must agree; use it as ``VinBigData(folder, fusion=...)`` (readers are the
``rad_id`` column) or as the dataset's ``target_transform`` (each box one vote).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

FusionMethod = Literal["wbf", "nms"]
_METHODS = frozenset({"wbf", "nms"})


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``len(a) x len(b)`` intersection over union of xyxy boxes (0 where a union is empty)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass(frozen=True, kw_only=True)
class BoxFusion:
    """Fuse overlapping boxes of the same class into one.

    Boxes are taken by decreasing score (input order among equals); each joins the
    cluster of its class whose current box overlaps it most, if that IoU is above
    ``iou_threshold``, else starts a cluster.  A cluster's box is the score-weighted
    mean of its members (``"wbf"``) or its first, highest-scoring member (``"nms"``).

    Parameters
    ----------
    method : {"wbf", "nms"}
        Weighted boxes fusion, or non-maximum suppression per class.
    iou_threshold : float
        In ``[0, 1)``; two boxes of a class match when their IoU is strictly above it.
    min_votes : int
        Keep a cluster only if at least this many distinct readers drew it (each box
        counts as a reader when readers are unknown).  ``2`` keeps findings that two
        of VinBigData's three radiologists agree on.
    """

    method: FusionMethod = "wbf"
    iou_threshold: float = 0.5
    min_votes: int = 1

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {sorted(_METHODS)}, got {self.method!r}")
        if not 0.0 <= self.iou_threshold < 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1), got {self.iou_threshold!r}")
        if self.min_votes < 1:
            raise ValueError(f"min_votes must be at least 1, got {self.min_votes!r}")

    def fuse(
        self, boxes: Any, labels: Any, *, scores: Any = None, readers: Any = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fuse ``N x 4`` xyxy ``boxes`` with class ``labels``.

        Parameters
        ----------
        boxes : array-like
            ``N x 4`` xyxy, any units.
        labels : array-like
            ``N`` class of each box; only boxes of one class are fused together.
        scores : array-like, optional
            ``N`` confidences (weights of the mean, and the order); all 1 by default.
        readers : array-like, optional
            ``N`` id of who drew each box (VinBigData's ``rad_id``); votes count distinct readers.

        Returns
        -------
        boxes : numpy.ndarray
            ``M x 4`` float32 fused boxes, in order of first appearance.
        labels : numpy.ndarray
            ``M`` int64.
        votes : numpy.ndarray
            ``M`` int64, the number of distinct readers behind each box (all >= ``min_votes``).
        """
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        lab = np.asarray(labels, np.int64).reshape(-1)
        n = len(b)
        w = np.ones(n) if scores is None else np.asarray(scores, np.float64).reshape(-1)
        who = list(range(n)) if readers is None else list(np.asarray(readers).reshape(-1))
        if not (len(lab) == len(w) == len(who) == n):
            raise ValueError(f"boxes, labels, scores and readers must have one entry per box ({n})")
        members: list[list[int]] = []
        current: list[np.ndarray] = []
        for i in np.argsort(-w, kind="stable"):
            same = [c for c in range(len(members)) if lab[members[c][0]] == lab[i]]
            best, best_iou = -1, self.iou_threshold
            if same:
                ious = box_iou(b[i], np.stack([current[c] for c in same]))[0]
                j = int(ious.argmax())
                if ious[j] > best_iou:
                    best = same[j]
            if best < 0:
                members.append([int(i)])
                current.append(b[i])
                continue
            members[best].append(int(i))
            if self.method == "wbf":
                m = members[best]
                current[best] = (b[m] * w[m, None]).sum(0) / max(w[m].sum(), 1e-12)
        votes = np.array([len({who[i] for i in m}) for m in members], np.int64)
        keep = [c for c in sorted(range(len(members)), key=lambda c: min(members[c])) if votes[c] >= self.min_votes]
        return (
            np.array([current[c] for c in keep], np.float32).reshape(-1, 4),
            np.array([lab[members[c][0]] for c in keep], np.int64),
            votes[keep],
        )

    def __call__(self, target: dict[str, Any]) -> dict[str, Any]:
        """Fuse a sample's ``boxes``/``labels`` (a dataset ``target_transform``; each box one vote).

        Tensors come back as tensors, arrays as arrays; other keys are kept.
        """
        boxes, labels = target["boxes"], target["labels"]
        fused, fused_labels, _ = self.fuse(_numpy(boxes), _numpy(labels))
        out = dict(target)
        out["boxes"], out["labels"] = _like(fused, boxes), _like(fused_labels, labels)
        return out


def _numpy(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)


def _like(arr: np.ndarray, template: Any) -> Any:
    if hasattr(template, "detach"):
        import torch

        return torch.from_numpy(arr).to(template.dtype)
    return arr
