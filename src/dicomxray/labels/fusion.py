"""Fusing near-duplicate boxes of several readers (VinBigData's three radiologists).

VinBigData has each image read by three radiologists, so one finding often comes
as two or three boxes that nearly coincide.  Winning solutions fused them before
training with ZFTurbo's ``ensemble_boxes`` (weighted boxes fusion, Solovyev et al.
2021, arXiv:1910.13302, or NMS per class).  :class:`BoxFusion` reproduces that
library's arithmetic exactly (same order, clipping, zero-area rule, coordinates and
confidences), and adds a minimum number of readers who must agree; use it as
``VinBigData(folder, fusion=...)`` (readers are the ``rad_id`` column) or as the
dataset's ``target_transform`` (each box one vote).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from ..errors import LabelWarning

FusionMethod = Literal["wbf", "nms"]
ConfType = Literal["avg", "max", "box_and_model_avg", "absent_model_aware_avg"]
_METHODS = frozenset({"wbf", "nms"})
_CONF_TYPES = frozenset({"avg", "max", "box_and_model_avg", "absent_model_aware_avg"})


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


class Fused(NamedTuple):
    """What :meth:`BoxFusion.fuse_scored` returns, in ``ensemble_boxes``' output order."""

    #: ``M x 4`` float64 xyxy, in the units of the input.
    boxes: np.ndarray
    #: ``M`` float64 confidences (``conf_type``).
    scores: np.ndarray
    #: ``M`` int64 classes.
    labels: np.ndarray
    #: ``M`` int64 distinct readers behind each box (all >= ``min_votes``).
    votes: np.ndarray


@dataclass(frozen=True, kw_only=True)
class BoxFusion:
    """Fuse overlapping boxes of the same class into one, exactly as ``ensemble_boxes`` does.

    Boxes below ``skip_box_thr`` are skipped; coordinates are normalised by ``image_size``
    when given and clipped to ``[0, 1]`` (without a size, only negatives are clipped, to 0);
    boxes of zero area after clipping are dropped.  Per class, boxes are taken in the
    order ``scores.argsort()[::-1]`` of ``ensemble_boxes``: by decreasing score, and among
    equal scores in whatever order numpy's (unstable) argsort leaves them, reversed; the
    same call is made here, so with the same numpy the order is the library's.  VinBigData's
    boxes all have score 1, so this tie rule decides which cluster a box joins: under
    another rule (input order, say) a box that overlaps two clusters, or links two boxes
    that do not overlap each other, can join a different cluster, and the fused boxes move
    by up to a box's size.  Each box joins the cluster whose current box overlaps it
    most if that IoU is above ``iou_threshold``, else starts one.  ``"wbf"`` replaces a
    cluster's box by the score-weighted mean of its members (in float32, as the library
    does); ``"nms"`` keeps the first box and suppresses the others, ordering ties as the
    library's numba-compiled sort does.

    Parameters
    ----------
    method : {"wbf", "nms"}
        ``ensemble_boxes.weighted_boxes_fusion`` or ``ensemble_boxes.nms``.
    iou_threshold : float
        In ``[0, 1)`` (``iou_thr``); two boxes of a class match when their IoU is strictly above it.
    min_votes : int
        Keep a cluster only if at least this many distinct readers drew it.  ``2`` keeps findings
        that two of VinBigData's three radiologists agree on.  Without readers each box is one
        vote, with a :class:`~dicomxray.errors.LabelWarning`.
    skip_box_thr : float
        Boxes with a score below this are left out (``skip_box_thr``).
    conf_type : {"avg", "max", "box_and_model_avg", "absent_model_aware_avg"}
        How a fused box's confidence is computed (``"wbf"`` only).
    weights : tuple of float, optional
        One weight per model (the ``models`` index of :meth:`fuse_scored`); all 1 by default.
    """

    method: FusionMethod = "wbf"
    iou_threshold: float = 0.5
    min_votes: int = 1
    skip_box_thr: float = 0.0
    conf_type: ConfType = "avg"
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {sorted(_METHODS)}, got {self.method!r}")
        if not 0.0 <= self.iou_threshold < 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1), got {self.iou_threshold!r}")
        if self.min_votes < 1:
            raise ValueError(f"min_votes must be at least 1, got {self.min_votes!r}")
        if self.conf_type not in _CONF_TYPES:
            raise ValueError(f"conf_type must be one of {sorted(_CONF_TYPES)}, got {self.conf_type!r}")
        if self.weights is not None and (not self.weights or min(self.weights) <= 0):
            raise ValueError(f"weights must be positive, one per model, got {self.weights!r}")

    def fuse(
        self, boxes: Any, labels: Any, *, scores: Any = None, readers: Any = None, image_size: tuple[int, int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fused ``(boxes float32, labels int64, votes int64)``; see :meth:`fuse_scored`."""
        out = self.fuse_scored(boxes, labels, scores=scores, readers=readers, image_size=image_size)
        return out.boxes.astype(np.float32).reshape(-1, 4), out.labels, out.votes

    def fuse_scored(
        self, boxes: Any, labels: Any, *, scores: Any = None, readers: Any = None, models: Any = None,
        image_size: tuple[int, int] | None = None,
    ) -> Fused:
        """Fuse ``N x 4`` xyxy ``boxes`` with class ``labels``.

        Parameters
        ----------
        boxes : array-like
            ``N x 4`` xyxy, in pixels (or already normalised, with no ``image_size``).
        labels : array-like
            ``N`` class of each box; only boxes of one class are fused together.
        scores : array-like, optional
            ``N`` confidences; all 1 by default (VinBigData's annotations).
        readers : array-like, optional
            ``N`` id of who drew each box (VinBigData's ``rad_id``); votes count distinct readers.
        models : array-like of int, optional
            ``N`` index (``0..len(weights)-1``) of the ensemble member each box comes from: the
            first axis of ``ensemble_boxes``' lists.  All 0 by default, as public VinBigData
            notebooks call it (every radiologist's boxes in one list).
        image_size : (width, height), optional
            Boxes are divided by it before fusion and multiplied back after, as notebooks do,
            so clipping to the image and the arithmetic are ``ensemble_boxes``' own.

        Returns
        -------
        Fused
            Boxes, scores, labels and votes in ``ensemble_boxes``' output order (decreasing score).
        """
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        n = len(b)
        lab = np.asarray(labels, np.int64).reshape(-1)
        s = np.ones(n) if scores is None else np.asarray(scores, np.float64).reshape(-1)
        if readers is None:
            if self.min_votes > 1:
                warnings.warn(f"BoxFusion(min_votes={self.min_votes}) without readers (no rad_id): each box counts "
                              "as one vote, so one reader's duplicate boxes can outvote the others", LabelWarning,
                              stacklevel=3)
            who: list[Any] = list(range(n))
        else:
            who = list(np.asarray(readers).reshape(-1))
        model = np.zeros(n, np.int64) if models is None else np.asarray(models, np.int64).reshape(-1)
        if not (len(lab) == len(s) == len(who) == len(model) == n):
            raise ValueError(f"boxes, labels, scores, readers and models must have one entry per box ({n})")
        weights = np.ones(int(model.max()) + 1 if n else 1) if self.weights is None else np.array(self.weights, np.float64)
        if n and (model.min() < 0 or model.max() >= len(weights)):
            raise ValueError(f"models must index weights (0..{len(weights) - 1}), got {sorted(set(model.tolist()))}")
        scale = np.ones(4) if image_size is None else np.array([image_size[0], image_size[1]] * 2, np.float64)
        run = _wbf if self.method == "wbf" else _nms
        fb, fs, fl, members = run(self, b / scale, s, lab, model, weights, upper=image_size is not None)
        votes = np.array([len({who[i] for i in m}) for m in members], np.int64)
        keep = votes >= self.min_votes
        return Fused((fb * scale)[keep].reshape(-1, 4), fs[keep], fl[keep], votes[keep])

    def __call__(self, target: dict[str, Any]) -> dict[str, Any]:
        """Fuse a sample's ``boxes``/``labels`` (a dataset ``target_transform``; each box one vote).

        Tensors come back as tensors, arrays as arrays; other keys are kept.
        """
        boxes, labels = target["boxes"], target["labels"]
        fused, fused_labels, _ = self.fuse(_numpy(boxes), _numpy(labels))
        out = dict(target)
        out["boxes"], out["labels"] = _like(fused, boxes), _like(fused_labels, labels)
        return out


_Result = tuple[np.ndarray, np.ndarray, np.ndarray, list[list[int]]]


def _clip(x: float, upper: bool) -> float:
    return min(max(x, 0.0), 1.0) if upper else max(x, 0.0)


def _prefilter(f: BoxFusion, b: np.ndarray, s: np.ndarray, lab: np.ndarray, model: np.ndarray, weights: np.ndarray,
               upper: bool) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Rows ``[label, score * weight, weight, model, x1, y1, x2, y2]`` per label, sorted as ensemble_boxes sorts them."""
    rows: dict[int, list[list[float]]] = {}
    index: dict[int, list[int]] = {}
    for i in np.argsort(model, kind="stable"):
        if s[i] < f.skip_box_thr:
            continue
        x1, y1, x2, y2 = (float(v) for v in b[i])
        x1, x2 = min(x1, x2), max(x1, x2)
        y1, y2 = min(y1, y2), max(y1, y2)
        x1, y1, x2, y2 = (_clip(v, upper) for v in (x1, y1, x2, y2))
        if (x2 - x1) * (y2 - y1) == 0.0:
            continue
        w = weights[model[i]]
        rows.setdefault(int(lab[i]), []).append([int(lab[i]), float(s[i]) * w, w, int(model[i]), x1, y1, x2, y2])
        index.setdefault(int(lab[i]), []).append(int(i))
    out = {}
    for k, r in rows.items():
        arr = np.array(r)
        order = arr[:, 1].argsort()[::-1]
        out[k] = (arr[order], np.asarray(index[k])[order])
    return out


def _weighted_box(rows: np.ndarray, conf_type: str) -> np.ndarray:
    box = np.zeros(8, dtype=np.float32)  # float32, as ensemble_boxes' get_weighted_box
    conf, confs, w = 0.0, [], 0.0
    for r in rows:
        box[4:] += r[1] * r[4:]
        conf += r[1]
        confs.append(r[1])
        w += r[2]
    box[0] = rows[0][0]
    box[1] = max(confs) if conf_type == "max" else conf / len(rows)
    box[2] = w
    box[3] = -1
    box[4:] /= conf
    return box


def _match(fused: np.ndarray, row: np.ndarray, thr: float) -> int:
    if not len(fused):
        return -1
    a, n = fused[:, 4:], row[4:]
    inter = np.maximum(np.minimum(a[:, 2], n[2]) - np.maximum(a[:, 0], n[0]), 0) * \
        np.maximum(np.minimum(a[:, 3], n[3]) - np.maximum(a[:, 1], n[1]), 0)
    iou = inter / ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (n[2] - n[0]) * (n[3] - n[1]) - inter)
    best = int(np.argmax(iou))
    return best if iou[best] > thr else -1


def _wbf(f: BoxFusion, b: np.ndarray, s: np.ndarray, lab: np.ndarray, model: np.ndarray, weights: np.ndarray,
         upper: bool) -> _Result:
    parts, members_all = [], []
    for rows, index in _prefilter(f, b, s, lab, model, weights, upper).values():
        fused = np.empty((0, 8))
        members: list[list[int]] = []
        for j in range(len(rows)):
            c = _match(fused, rows[j], f.iou_threshold)
            if c < 0:
                members.append([j])
                fused = np.vstack((fused, rows[j].copy()))
            else:
                members[c].append(j)
                fused[c] = _weighted_box(rows[members[c]], f.conf_type)
        for c, m in enumerate(members):
            fused[c, 1] = _rescaled(f.conf_type, fused[c], rows[m], weights)
        parts.append(fused)
        members_all += [[int(index[j]) for j in m] for m in members]
    if not parts:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), []
    every = np.concatenate(parts, axis=0)
    order = every[:, 1].argsort()[::-1]
    every = every[order]
    return every[:, 4:], every[:, 1], every[:, 0].astype(np.int64), [members_all[i] for i in order]


def _rescaled(conf_type: str, fused: np.ndarray, rows: np.ndarray, weights: np.ndarray) -> float:
    score, n = float(fused[1]), len(rows)
    if conf_type == "box_and_model_avg":
        score = score * n / fused[2]
        _, idx = np.unique(rows[:, 3], return_index=True)
        return float(score * rows[idx, 2].sum() / weights.sum())
    if conf_type == "absent_model_aware_avg":
        mask = np.ones(len(weights), dtype=bool)
        mask[np.unique(rows[:, 3]).astype(int)] = False
        return float(score * n / (fused[2] + weights[mask].sum()))
    if conf_type == "max":
        return float(score / weights.max())
    return float(score * min(len(weights), n) / weights.sum())


def _nms(f: BoxFusion, b: np.ndarray, s: np.ndarray, lab: np.ndarray, model: np.ndarray, weights: np.ndarray,
         upper: bool) -> _Result:
    order = np.argsort(model, kind="stable")
    order = order[s[order] >= f.skip_box_thr]
    boxes = np.clip(b[order], 0, 1 if upper else None)
    boxes = np.stack([np.minimum(boxes[:, 0], boxes[:, 2]), np.minimum(boxes[:, 1], boxes[:, 3]),
                      np.maximum(boxes[:, 0], boxes[:, 2]), np.maximum(boxes[:, 1], boxes[:, 3])], 1)
    sc = s[order] * weights[model[order]] / weights.sum() if f.weights is not None else s[order]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    ok = area > 0
    boxes, sc, labs, index, area = boxes[ok], sc[ok], lab[order][ok], order[ok], area[ok]
    out_b, out_s, out_l, members = [], [], [], []
    for k in np.unique(labs):
        cls = np.flatnonzero(labs == k)
        x = boxes[cls]
        queue = _numba_argsort(sc[cls])[::-1]
        while queue.size:
            i, rest = queue[0], queue[1:]
            inter = np.maximum(0.0, np.minimum(x[i, 2], x[rest, 2]) - np.maximum(x[i, 0], x[rest, 0])) * \
                np.maximum(0.0, np.minimum(x[i, 3], x[rest, 3]) - np.maximum(x[i, 1], x[rest, 1]))
            ovr = inter / (area[cls][i] + area[cls][rest] - inter)
            out_b.append(x[i])
            out_s.append(sc[cls][i])
            out_l.append(int(k))
            members.append([int(index[cls][j]) for j in (i, *rest[ovr > f.iou_threshold])])
            queue = rest[ovr <= f.iou_threshold]
    return (np.asarray(out_b, np.float64).reshape(-1, 4), np.asarray(out_s, np.float64),
            np.asarray(out_l, np.int64), members)


def _numba_argsort(a: np.ndarray) -> np.ndarray:
    """``a.argsort()`` as numba's nopython quicksort orders it (ensemble_boxes' NMS is numba-compiled).

    Insertion sort below 15 items, median-of-three partitions above; ties therefore come out as
    numba leaves them, which differs from numpy's (SIMD) argsort.
    """
    r = list(range(len(a)))

    def insertion(low: int, high: int) -> None:
        for i in range(low + 1, high + 1):
            k, v, j = r[i], a[r[i]], i
            while j > low and v < a[r[j - 1]]:
                r[j] = r[j - 1]
                j -= 1
            r[j] = k

    def partition(low: int, high: int) -> int:
        mid = (low + high) >> 1
        if a[r[mid]] < a[r[low]]:
            r[low], r[mid] = r[mid], r[low]
        if a[r[high]] < a[r[mid]]:
            r[high], r[mid] = r[mid], r[high]
        if a[r[mid]] < a[r[low]]:
            r[low], r[mid] = r[mid], r[low]
        pivot = a[r[mid]]
        r[high], r[mid] = r[mid], r[high]
        i, j = low, high - 1
        while True:
            while i < high and a[r[i]] < pivot:
                i += 1
            while j >= low and pivot < a[r[j]]:
                j -= 1
            if i >= j:
                break
            r[i], r[j] = r[j], r[i]
            i, j = i + 1, j - 1
        r[i], r[high] = r[high], r[i]
        return i

    stack = [(0, len(a) - 1)] if len(a) > 1 else []
    while stack:
        low, high = stack.pop()
        while high - low >= 15:
            i = partition(low, high)
            if high - i > i - low:
                if high > i:
                    stack.append((i + 1, high))
                high = i - 1
            else:
                if i > low:
                    stack.append((low, i - 1))
                low = i + 1
        insertion(low, high)
    return np.asarray(r, np.int64)


def _numpy(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)


def _like(arr: np.ndarray, template: Any) -> Any:
    if hasattr(template, "detach"):
        import torch

        return torch.from_numpy(arr).to(template.dtype)
    return arr
