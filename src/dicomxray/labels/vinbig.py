"""VinBigData Chest X-ray Abnormalities (Kaggle 2020): ``train.csv``, one row per box per radiologist."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Target, boxes_array, require_file
from .fusion import BoxFusion

VINBIG_CLASSES = (
    "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Consolidation", "ILD", "Infiltration",
    "Lung Opacity", "Nodule/Mass", "Other lesion", "Pleural effusion", "Pleural thickening", "Pneumothorax",
    "Pulmonary fibrosis", "No finding",
)
#: ``class_id`` of "No finding" in ``train.csv`` and in submissions.
VINBIG_NO_FINDING = 14


class VinBigData:
    """``image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max``; files are ``<image_id>.dicom``.

    Box label = ``class_id + 1`` (0 is background).  Image label: 0 when every
    radiologist said "No finding" (class 14), else 1; ``study_positive`` says the same.

    Parameters
    ----------
    folder : path-like
        The competition folder.
    filename : str
        The label file in ``folder``.
    fusion : BoxFusion, optional
        Fuse the radiologists' near-duplicate boxes of each class, e.g.
        ``BoxFusion(method="wbf", iou_threshold=0.4, min_votes=2)``; votes count distinct
        ``rad_id``.  By default every radiologist's box is a separate target.
    """

    classes: tuple[str, ...] = ("no_finding", "abnormal")
    box_classes: tuple[str, ...] = ("background", *VINBIG_CLASSES[:VINBIG_NO_FINDING])

    def __init__(
        self, folder: str | os.PathLike[str], filename: str = "train.csv", *, fusion: BoxFusion | None = None
    ) -> None:
        path = require_file(folder, filename)
        boxes: dict[str, list[list[float]]] = {}
        labels: dict[str, list[int]] = {}
        readers: dict[str, list[str]] = {}
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                iid = row["image_id"]
                boxes.setdefault(iid, [])
                labels.setdefault(iid, [])
                readers.setdefault(iid, [])
                cid = int(row["class_id"])
                if cid != VINBIG_NO_FINDING and row["x_min"].strip():
                    boxes[iid].append([float(row[k]) for k in ("x_min", "y_min", "x_max", "y_max")])
                    labels[iid].append(cid + 1)
                    readers[iid].append(row.get("rad_id") or "")
        self.fusion = fusion
        self._targets: dict[str, Target] = {}
        for iid in boxes:
            b, lab = boxes_array(boxes[iid]), np.asarray(labels[iid], np.int64)
            abnormal = bool(labels[iid])
            if fusion is not None:
                b, lab, _ = fusion.fuse(b, lab, readers=readers[iid])
            self._targets[iid] = Target(b, lab, int(abnormal), iid, study_positive=abnormal)

    def target(self, key: str) -> Target | None:
        return self._targets.get(key)

    def keys(self) -> set[str]:
        return set(self._targets)


def vinbig_prediction_string(
    boxes: Any, scores: Sequence[float] | np.ndarray, box_labels: Sequence[int] | np.ndarray,
    *, no_finding_score: float | None = None,
) -> str:
    """An image row's ``PredictionString``: ``class_id conf x_min y_min x_max y_max ...``.

    Parameters
    ----------
    boxes : array-like
        ``N x 4`` xyxy in original pixels (see :func:`dicomxray.labels.boxes_to_original_batch`).
    scores : sequence of float
        ``N`` confidences.
    box_labels : sequence of int
        ``N`` labels as the dataset gives them (``class_id + 1``, 1..14); written as ``class_id``.
    no_finding_score : float, optional
        Also append ``14 p 0 0 1 1`` (a "No finding" guess, e.g. from a classifier).

    Returns
    -------
    str
        With no boxes (and no ``no_finding_score``): ``14 1 0 0 1 1``, the competition's "No finding".
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    labs = [int(v) for v in np.asarray(box_labels).reshape(-1)]
    bad = [v for v in labs if not 1 <= v <= VINBIG_NO_FINDING]
    if bad:
        raise ValueError(f"box_labels must be dataset labels 1..{VINBIG_NO_FINDING} (class_id + 1), got {bad[:5]}")
    parts = [
        f"{lab - 1} {s:.6g} {x0:.1f} {y0:.1f} {x1:.1f} {y1:.1f}"
        for lab, s, (x0, y0, x1, y1) in zip(labs, scores, b, strict=True)
    ]
    if no_finding_score is not None:
        parts.append(f"{VINBIG_NO_FINDING} {no_finding_score:.6g} 0 0 1 1")
    return " ".join(parts) if parts else f"{VINBIG_NO_FINDING} 1 0 0 1 1"
