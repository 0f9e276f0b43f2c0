"""The leaderboard metrics of the three competitions, in numpy, from their published definitions.

Inputs are the submission's own format: ``{id: Prediction}`` as :func:`~dicomxray.labels.read_submission`
returns it, for the predictions and for the truth (a solution file in the same format, or
:func:`siim_truth` / :func:`rsna_truth` / :func:`vinbig_truth` built from the labels).

* SIIM-FISABIO-RSNA COVID-19: PASCAL VOC 2010 average precision (all-point interpolation,
  detections taken by descending confidence, each matched greedily to the truth box it overlaps
  most) at IoU > 0.5, per class: the four study classes (box ``0 0 1 1``), ``none`` and ``opacity``;
  the score is the mean over the classes, i.e. 4/6 study part + 2/6 image part.
* RSNA Pneumonia: per image, the mean over IoU thresholds 0.40, 0.45, ..., 0.75 of
  ``TP / (TP + FP + FN)``; images with neither truth nor prediction are left out, images with no
  truth and a prediction score 0; the mean over images.
* VinBigData: VOC 2010 mAP at IoU > 0.4 over the 15 classes, ``No finding`` (14) as box ``0 0 1 1``.
* SIIM-ACR Pneumothorax: the mean over images of the Dice coefficient ``2|P & T| / (|P| + |T|)``, an
  image with an empty truth and an empty prediction scoring 1 (:func:`siim_acr_dice`, over
  ``{ImageId: H x W mask}``; truth from :func:`siim_acr_truth`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import LabelSource, Target
from .fusion import box_iou
from .rle import siim_acr_mask
from .siim import SIIM_STUDY_CLASSES
from .submission import Prediction
from .vinbig import VINBIG_NO_FINDING

__all__ = [
    "RSNA_IOU_THRESHOLDS", "Score", "rsna_map", "rsna_truth", "siim_acr_dice", "siim_acr_truth", "siim_map",
    "siim_truth", "vinbig_map", "vinbig_truth", "voc_average_precision",
]

#: The IoU thresholds of the RSNA Pneumonia metric.
RSNA_IOU_THRESHOLDS = tuple(round(0.40 + 0.05 * i, 2) for i in range(8))
_WHOLE = np.array([[0.0, 0.0, 1.0, 1.0]])


@dataclass(frozen=True)
class Score:
    """A leaderboard score and what it is made of.

    Attributes
    ----------
    value : float
        The score the leaderboard shows.
    parts : dict of str to float
        SIIM: ``{"study": ..., "image": ...}``; empty otherwise.
    per_class : dict of str to float
        Average precision of each class present in the truth (VOC metrics); empty for RSNA.
    """

    value: float
    parts: dict[str, float] = field(default_factory=dict)
    per_class: dict[str, float] = field(default_factory=dict)


def voc_average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """PASCAL VOC 2010 AP: the area under the precision envelope, at every recall change (all points)."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _class_ap(truth: Mapping[str, np.ndarray], detections: list[tuple[float, str, np.ndarray]], iou: float) -> float:
    """VOC AP of one class: ``truth`` boxes per image, ``detections`` (score, image, box)."""
    n_truth = sum(len(b) for b in truth.values())
    order = sorted(range(len(detections)), key=lambda d: -detections[d][0])  # stable: ties in input order
    used = {k: np.zeros(len(b), bool) for k, b in truth.items()}
    tp = np.zeros(len(order))
    for rank, d in enumerate(order):
        _, key, box = detections[d]
        gt = truth.get(key)
        if gt is None or not len(gt):
            continue
        overlaps = box_iou(box, gt)[0]
        j = int(overlaps.argmax())
        if overlaps[j] > iou and not used[key][j]:
            used[key][j] = True
            tp[rank] = 1
    ctp = np.cumsum(tp)
    recall = ctp / n_truth
    precision = ctp / np.maximum(np.arange(1, len(order) + 1), np.finfo(np.float64).eps)
    return voc_average_precision(recall, precision)


def _voc(predictions: Mapping[str, Prediction], truth: Mapping[str, Prediction], iou: float,
         classes: Iterable[str]) -> dict[str, float]:
    _check_ids(predictions, truth)
    out = {}
    for cls in classes:
        gt = {k: p.boxes[np.asarray(p.classes) == cls] for k, p in truth.items() if cls in p.classes}
        if not gt:
            continue  # a class absent from the truth has no AP (left out of the mean, as the leaderboard does)
        dets = [(float(s), k, b) for k, p in predictions.items() if k in truth
                for c, s, b in zip(p.classes, p.scores, p.boxes, strict=True) if c == cls]
        out[cls] = _class_ap(gt, dets, iou)
    return out


def _check_ids(predictions: Mapping[str, Prediction], truth: Mapping[str, Prediction]) -> None:
    extra = sorted(set(predictions) - set(truth))
    if extra:
        raise ValueError(f"{len(extra)} predicted ids have no truth (first: {extra[:3]}); score the same ids")


def _mean(values: Iterable[float]) -> float:
    v = list(values)
    return float(np.mean(v)) if v else 0.0


def siim_map(predictions: Mapping[str, Prediction], truth: Mapping[str, Prediction]) -> Score:
    """SIIM-FISABIO-RSNA COVID-19 mAP@0.5 over the six classes, with its study and image parts.

    Parameters
    ----------
    predictions, truth : mapping of str to Prediction
        ``<SOPInstanceUID>_image`` and ``<StudyInstanceUID>_study`` rows, as :func:`read_submission`
        gives them (truth: :func:`siim_truth`).

    Returns
    -------
    Score
        ``value`` (mean over the classes present), ``parts["study"]``, ``parts["image"]``, ``per_class``.
    """
    ap = _voc(predictions, truth, 0.5, (*SIIM_STUDY_CLASSES, "none", "opacity"))
    study = [ap[c] for c in SIIM_STUDY_CLASSES if c in ap]
    image = [ap[c] for c in ("none", "opacity") if c in ap]
    return Score(_mean(ap.values()), {"study": _mean(study), "image": _mean(image)}, ap)


def vinbig_map(predictions: Mapping[str, Prediction], truth: Mapping[str, Prediction], *,
               iou_threshold: float = 0.4) -> Score:
    """VinBigData mAP@0.4 over classes ``0``..``14`` (``14`` = No finding, box ``0 0 1 1``)."""
    ap = _voc(predictions, truth, iou_threshold, [str(c) for c in range(VINBIG_NO_FINDING + 1)])
    return Score(_mean(ap.values()), per_class=ap)


def rsna_map(predictions: Mapping[str, Prediction], truth: Mapping[str, Prediction],
             thresholds: Iterable[float] = RSNA_IOU_THRESHOLDS) -> Score:
    """RSNA Pneumonia: the mean over images of the mean over IoU thresholds of TP / (TP + FP + FN).

    Per threshold, predictions are taken by descending confidence, each matching the unmatched
    truth box it overlaps most when that IoU is above the threshold.  An image with no truth
    and no prediction is left out; one with no truth and some prediction scores 0.
    """
    _check_ids(predictions, truth)
    ts = tuple(thresholds)
    scores = []
    for key, t in truth.items():
        p = predictions.get(key)
        pb = np.zeros((0, 4)) if p is None else p.boxes[np.argsort(-p.scores, kind="stable")]
        if not len(t.boxes) and not len(pb):
            continue
        if not len(t.boxes):
            scores.append(0.0)
            continue
        overlaps = box_iou(pb, t.boxes)
        per_t = []
        for thr in ts:
            free = np.ones(len(t.boxes), bool)
            tp = 0
            for row in overlaps:
                cand = np.where(free, row, -1.0)
                j = int(cand.argmax()) if len(cand) else -1
                if j >= 0 and cand[j] > thr:
                    free[j] = False
                    tp += 1
            fp, fn = len(pb) - tp, len(t.boxes) - tp
            per_t.append(tp / (tp + fp + fn))
        scores.append(float(np.mean(per_t)))
    return Score(_mean(scores))


def _targets(labels: LabelSource, keys: Iterable[str] | None) -> Iterator[tuple[str, Target]]:
    """``(key, target)`` of every labelled key (all of ``labels`` when ``keys`` is None), sorted when all."""
    for key in sorted(labels.keys()) if keys is None else keys:
        t = labels.target(key)
        if t is not None:
            yield key, t


def siim_truth(labels: LabelSource, keys: Iterable[str] | None = None) -> dict[str, Prediction]:
    """The SIIM truth in submission form: ``opacity`` boxes or ``none``, and each study's class, box ``0 0 1 1``.

    ``keys`` (image keys, e.g. a validation fold) limits it; their studies come along.
    """
    out: dict[str, Prediction] = {}
    for key, t in _targets(labels, keys):
        if len(t.boxes):
            out[f"{key}_image"] = _pred(["opacity"] * len(t.boxes), t.boxes)
        else:
            out[f"{key}_image"] = _pred(["none"], _WHOLE)
        if t.image_label >= 0:
            out[f"{t.study_id}_study"] = _pred([SIIM_STUDY_CLASSES[t.image_label]], _WHOLE)
    return out


def rsna_truth(labels: LabelSource, keys: Iterable[str] | None = None) -> dict[str, Prediction]:
    """The RSNA truth in submission form: each patient's boxes (none for a negative)."""
    return {k: _pred([""] * len(t.boxes), t.boxes) for k, t in _targets(labels, keys)}


def vinbig_truth(labels: LabelSource, keys: Iterable[str] | None = None) -> dict[str, Prediction]:
    """The VinBigData truth in submission form: the (fused) boxes as class ids, or ``14`` box ``0 0 1 1``."""
    out: dict[str, Prediction] = {}
    for key, t in _targets(labels, keys):
        if len(t.boxes):
            out[key] = _pred([str(int(v) - 1) for v in t.box_labels], t.boxes)
        else:
            out[key] = _pred([str(VINBIG_NO_FINDING)], _WHOLE)
    return out


def _pred(classes: list[str], boxes: np.ndarray) -> Prediction:
    return Prediction(tuple(classes), np.ones(len(classes)), np.asarray(boxes, np.float64).reshape(-1, 4))


def siim_acr_dice(predictions: Mapping[str, Any], truth: Mapping[str, np.ndarray]) -> Score:
    """SIIM-ACR Pneumothorax: the mean over images of the Dice coefficient; empty truth and prediction score 1.

    Parameters
    ----------
    predictions : mapping of str to array or str
        ``{ImageId: H x W mask}`` (nonzero = pneumothorax; a ``1 x H x W`` plane too), or the run-length
        strings of a submission (:func:`~dicomxray.labels.read_siim_acr_submission`), decoded at the truth's size.
    truth : mapping of str to array
        ``{ImageId: H x W mask}`` in original pixels, e.g. :func:`siim_acr_truth`.

    Raises
    ------
    ValueError
        When the ids differ (every truth image needs a prediction) or a mask's shape is not its truth's.
    """
    missing, extra = sorted(set(truth) - set(predictions)), sorted(set(predictions) - set(truth))
    if missing or extra:
        raise ValueError(f"score the same ids: {len(missing)} truth images have no prediction (first: {missing[:3]}; "
                         f"predict -1 for none), {len(extra)} predicted ids have no truth (first: {extra[:3]})")
    scores = []
    for key, t in truth.items():
        tm = _plane(t, key)
        p = predictions[key]
        pm = siim_acr_mask(p, *tm.shape) != 0 if isinstance(p, str) else _plane(p, key)
        if pm.shape != tm.shape:
            raise ValueError(f"{key}: predicted mask of {pm.shape} for a truth of {tm.shape}")
        total = int(pm.sum()) + int(tm.sum())
        scores.append(1.0 if total == 0 else 2.0 * int(np.logical_and(pm, tm).sum()) / total)
    return Score(_mean(scores))


def _plane(mask: Any, key: str) -> np.ndarray:
    arr = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask)
    arr = arr[0] if arr.ndim == 3 and arr.shape[0] == 1 else arr
    if arr.ndim != 2:
        raise ValueError(f"{key}: a mask is one H x W plane, got shape {arr.shape}")
    return arr != 0


def siim_acr_truth(labels: LabelSource, keys: Iterable[str] | None = None, *,
                   sizes: Mapping[str, tuple[int, int]] | None = None) -> dict[str, np.ndarray]:
    """The SIIM-ACR truth: ``{ImageId: H x W bool}``, the union of each image's masks in original pixels.

    Parameters
    ----------
    labels : LabelSource
        A source with masks (:class:`~dicomxray.labels.SiimAcrPneumothorax`).
    keys : iterable of str, optional
        Limit it (e.g. to a validation fold).
    sizes : mapping of str to (width, height), optional
        Each image's size; by default ``labels.image_size(key)`` (SIIM-ACR reads it from the file's
        Rows and Columns).
    """
    size_of: Callable[[str], tuple[int, int]] | None = getattr(labels, "image_size", None)
    out: dict[str, np.ndarray] = {}
    for key, t in _targets(labels, keys):
        if sizes is not None:
            width, height = sizes[key]
        elif size_of is not None:
            width, height = size_of(key)
        else:
            raise ValueError(f"{type(labels).__name__} has no image_size(key): give sizes={{key: (width, height)}}")
        planes = t.masks.instances(int(height), int(width)) if t.masks is not None else np.zeros((0, height, width))
        out[key] = np.asarray(planes.any(0)) if len(planes) else np.zeros((int(height), int(width)), bool)
    return out
