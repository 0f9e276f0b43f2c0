"""RSNA Pneumonia Detection (Kaggle 2018): ``stage_2_train_labels.csv``, one row per box."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LabelFormatError
from ._csv import read_csv
from .base import KeyedTargets, Target, boxes_array, require_file

#: ``stage_2_detailed_class_info.csv``'s classes, in the order of ``image_label`` with ``detailed=True``.
RSNA_DETAILED_CLASSES = ("Normal", "No Lung Opacity / Not Normal", "Lung Opacity")


class RsnaPneumonia(KeyedTargets):
    """``patientId,x,y,width,height,Target``; negatives have empty coordinates and Target 0.

    Image label: ``Target`` (0 normal/no opacity, 1 lung opacity; ``study_positive`` says the
    same); boxes (``x, y, width, height`` in the file) become xyxy with label 1.

    Parameters
    ----------
    folder : path-like
        The competition folder.
    filename : str
        The box file in ``folder``.
    detailed : bool
        Read ``stage_2_detailed_class_info.csv`` too: the image label becomes one of its three
        classes (0 ``Normal``, 1 ``No Lung Opacity / Not Normal``, 2 ``Lung Opacity``), the
        target competitors trained their classifiers on.
    """

    classes: tuple[str, ...] = ("no_opacity", "lung_opacity")
    box_classes: tuple[str, ...] = ("background", "lung_opacity")

    def __init__(
        self, folder: str | os.PathLike[str], filename: str = "stage_2_train_labels.csv", *, detailed: bool = False,
    ) -> None:
        path = require_file(folder, filename)
        rows: dict[str, list[list[float]]] = {}
        label: dict[str, int] = {}
        for row in read_csv(path, required=("patientId", "x", "y", "width", "height", "Target")):
            pid = row["patientId"]
            rows.setdefault(pid, [])
            label[pid] = max(label.get(pid, 0), int(row.number("Target", blank=0.0)))
            if row.text("x"):
                x, y, w, h = (row.number(k) for k in ("x", "y", "width", "height"))
                rows[pid].append([x, y, x + w, y + h])
        image_label = dict(label)
        if detailed:
            self.classes = RSNA_DETAILED_CLASSES
            image_label = _detailed(require_file(folder, "stage_2_detailed_class_info.csv"), label)
        self.folder = Path(folder)
        self._targets = {
            pid: Target(boxes_array(b), np.ones(len(b), np.int64), image_label[pid], pid, study_positive=label[pid] == 1)
            for pid, b in rows.items()
        }


def _detailed(path: Path, target: dict[str, int]) -> dict[str, int]:
    """Each patient's detailed class index, checked against ``Target`` (Lung Opacity iff Target 1)."""
    out: dict[str, int] = {}
    for row in read_csv(path, required=("patientId", "class")):
        pid, name = row["patientId"], row.text("class")
        if name not in RSNA_DETAILED_CLASSES:
            raise row.error(f"unknown class {name!r}; expected one of {RSNA_DETAILED_CLASSES}", "class")
        cls = RSNA_DETAILED_CLASSES.index(name)
        if pid in target and (cls == 2) != (target[pid] == 1):
            raise row.error(f"{pid} is {name!r} but its Target is {target[pid]}", "class")
        out[pid] = cls
    missing = sorted(set(target) - set(out))
    if missing:
        raise LabelFormatError(f"{path}: {len(missing)} patients have no detailed class (first: {missing[0]})",
                               path=str(path))
    return out


def rsna_prediction_string(boxes: Any, scores: Sequence[float] | np.ndarray) -> str:
    """An image row's ``PredictionString``: ``conf x y width height ...`` (top-left corner and size).

    Parameters
    ----------
    boxes : array-like
        ``N x 4`` xyxy in original pixels (see :func:`dicomxray.labels.boxes_to_original_batch`).
    scores : sequence of float
        ``N`` confidences.

    Returns
    -------
    str
        Empty with no boxes: RSNA's "no pneumonia" is an empty ``PredictionString``.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return " ".join(
        f"{s:.6g} {x0:.1f} {y0:.1f} {x1 - x0:.1f} {y1 - y0:.1f}" for s, (x0, y0, x1, y1) in zip(scores, b, strict=True)
    )
