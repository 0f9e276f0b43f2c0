"""VinBigData Chest X-ray Abnormalities (Kaggle 2020): ``train.csv``, one row per box per radiologist."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ..errors import LabelWarning
from ._csv import read_csv
from .base import KeyedTargets, Target, boxes_array, require_file
from .fusion import BoxFusion

VINBIG_CLASSES = (
    "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Consolidation", "ILD", "Infiltration",
    "Lung Opacity", "Nodule/Mass", "Other lesion", "Pleural effusion", "Pleural thickening", "Pneumothorax",
    "Pulmonary fibrosis", "No finding",
)
#: ``class_id`` of "No finding" in ``train.csv`` and in submissions.
VINBIG_NO_FINDING = 14


MultiHotRule = Literal["any", "majority", "fused"]
_MULTI_HOT_RULES = frozenset({"any", "majority", "fused"})


class VinBigData(KeyedTargets):
    """``image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max``; files are ``<image_id>.dicom``.

    Box label = ``class_id + 1`` (0 is background).  Image label: 1 when the image keeps a box
    (after fusion, when there is one), else 0 ("No finding"); ``study_positive`` says the same,
    so ``image_label`` never claims a finding whose boxes fusion removed.  ``image_labels`` is
    the 14-way multi-hot target of the findings, by ``multi_hot``.

    Parameters
    ----------
    folder : path-like
        The competition folder.
    filename : str
        The label file in ``folder``.  Optional ``width`` and ``height`` columns (in re-exports of
        the data set) give fusion the image size, so boxes are clipped to the image.
    fusion : BoxFusion, optional
        Fuse the radiologists' near-duplicate boxes of each class, e.g.
        ``BoxFusion(method="wbf", iou_threshold=0.4, min_votes=2)``; votes count distinct
        ``rad_id``.  By default every radiologist's box is a separate target.
    multi_hot : {"any", "majority", "fused"}
        The vote rule of ``image_labels``: ``"any"``, a finding any radiologist marked;
        ``"majority"``, one that at least 2 distinct radiologists marked (of VinBigData's 3);
        ``"fused"``, one that keeps a box after ``fusion``.

    Warns
    -----
    LabelWarning
        When a rule needs votes (``fusion.min_votes > 1``, ``multi_hot="majority"``) and the file
        has no ``rad_id``: each box then counts as one vote.
    """

    classes: tuple[str, ...] = ("no_finding", "abnormal")
    box_classes: tuple[str, ...] = ("background", *VINBIG_CLASSES[:VINBIG_NO_FINDING])
    #: Names of ``Target.image_labels``' 14 entries (the findings, without "No finding").
    multilabel_classes: tuple[str, ...] = VINBIG_CLASSES[:VINBIG_NO_FINDING]

    def __init__(
        self, folder: str | os.PathLike[str], filename: str = "train.csv", *, fusion: BoxFusion | None = None,
        multi_hot: MultiHotRule = "any",
    ) -> None:
        if multi_hot not in _MULTI_HOT_RULES:
            raise ValueError(f"multi_hot must be one of {sorted(_MULTI_HOT_RULES)}, got {multi_hot!r}")
        if multi_hot == "fused" and fusion is None:
            raise ValueError("multi_hot='fused' needs fusion=BoxFusion(...)")
        path = require_file(folder, filename)
        boxes: dict[str, list[list[float]]] = {}
        labels: dict[str, list[int]] = {}
        readers: dict[str, list[str]] = {}
        sizes: dict[str, tuple[int, int]] = {}
        for row in read_csv(path, required=("image_id", "class_id", "x_min", "y_min", "x_max", "y_max")):
            iid = row["image_id"]
            boxes.setdefault(iid, [])
            labels.setdefault(iid, [])
            readers.setdefault(iid, [])
            if row.get("width").strip() and row.get("height").strip():
                sizes[iid] = (int(row.number("width")), int(row.number("height")))
            cid = row.integer("class_id")
            if not 0 <= cid <= VINBIG_NO_FINDING:
                raise row.error(f"class_id {cid} is not in 0..{VINBIG_NO_FINDING}", "class_id")
            if cid != VINBIG_NO_FINDING and row.text("x_min"):
                boxes[iid].append([row.number(k) for k in ("x_min", "y_min", "x_max", "y_max")])
                labels[iid].append(cid + 1)
                readers[iid].append(row.get("rad_id"))
        has_readers = any(r for rs in readers.values() for r in rs)
        needs_votes = (fusion is not None and fusion.min_votes > 1) or multi_hot == "majority"
        if needs_votes and not has_readers:
            warnings.warn(f"{path}: no rad_id column, so votes cannot count radiologists: each box counts as one "
                          "vote (one radiologist's two boxes then agree with each other)", LabelWarning, stacklevel=2)
        self.fusion = fusion
        self.multi_hot = multi_hot
        self._targets: dict[str, Target] = {}
        for iid in boxes:
            b, lab = boxes_array(boxes[iid]), np.asarray(labels[iid], np.int64)
            who = readers[iid] if has_readers else [str(i) for i in range(len(lab))]
            hot = np.zeros(VINBIG_NO_FINDING, np.float32)
            if multi_hot != "fused":
                need = 2 if multi_hot == "majority" else 1
                for c in set(lab.tolist()):
                    hot[c - 1] = float(len({w for w, v in zip(who, lab.tolist(), strict=True) if v == c}) >= need)
            if fusion is not None:
                b, lab, _ = fusion.fuse(b, lab, readers=who, image_size=sizes.get(iid))
            if multi_hot == "fused":
                hot[lab - 1] = 1.0
            abnormal = bool(len(lab))
            self._targets[iid] = Target(b, lab, int(abnormal), iid, study_positive=abnormal, image_labels=hot)


def vinbig_prediction_string(
    boxes: Any, scores: Sequence[float] | np.ndarray, *, class_ids: Sequence[int] | np.ndarray | None = None,
    box_labels: Sequence[int] | np.ndarray | None = None, no_finding_score: float | None = None,
) -> str:
    """An image row's ``PredictionString``: ``class_id conf x_min y_min x_max y_max ...``.

    The class convention is never guessed: give exactly one of ``class_ids`` (0-13, as the
    competition writes them and most models predict) or ``box_labels`` (1-14, as
    :class:`VinBigData` and the dataset yield them; written minus 1).

    Parameters
    ----------
    boxes : array-like
        ``N x 4`` xyxy in original pixels (see :func:`dicomxray.labels.boxes_to_original_batch`).
    scores : sequence of float
        ``N`` confidences.
    class_ids : sequence of int, optional
        ``N`` competition class ids, 0..13.
    box_labels : sequence of int, optional
        ``N`` dataset labels, 1..14 (``class_id + 1``).
    no_finding_score : float, optional
        Also append ``14 p 0 0 1 1`` (a "No finding" guess, e.g. from a classifier).

    Returns
    -------
    str
        With no boxes (and no ``no_finding_score``): ``14 1 0 0 1 1``, the competition's "No finding".

    Raises
    ------
    ValueError
        With both or neither of ``class_ids``/``box_labels``, or a value outside its range.
    """
    if (class_ids is None) == (box_labels is None):
        raise ValueError("give exactly one of class_ids= (0-13, the competition's) or box_labels= (1-14, the dataset's)")
    given, low, name = (class_ids, 0, "class_ids") if class_ids is not None else (box_labels, 1, "box_labels")
    ids = [int(v) for v in np.asarray(given).reshape(-1)]
    bad = [v for v in ids if not low <= v < low + VINBIG_NO_FINDING]
    if bad:
        raise ValueError(f"{name} must be in {low}..{low + VINBIG_NO_FINDING - 1}, got {bad[:5]}")
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    parts = [
        f"{cid - low} {s:.6g} {x0:.1f} {y0:.1f} {x1:.1f} {y1:.1f}"
        for cid, s, (x0, y0, x1, y1) in zip(ids, scores, b, strict=True)
    ]
    if no_finding_score is not None:
        parts.append(f"{VINBIG_NO_FINDING} {no_finding_score:.6g} 0 0 1 1")
    return " ".join(parts) if parts else f"{VINBIG_NO_FINDING} 1 0 0 1 1"
