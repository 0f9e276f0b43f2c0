"""RSNA Pneumonia Detection (Kaggle 2018): ``stage_2_train_labels.csv``, one row per box."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import Target, boxes_array, require_file


class RsnaPneumonia:
    """``patientId,x,y,width,height,Target``; negatives have empty coordinates and Target 0.

    Image label: ``Target`` (0 normal/no opacity, 1 lung opacity; ``study_positive`` says the
    same); boxes (``x, y, width, height`` in the file) become xyxy with label 1.
    """

    classes: tuple[str, ...] = ("no_opacity", "lung_opacity")
    box_classes: tuple[str, ...] = ("background", "lung_opacity")

    def __init__(self, folder: str | os.PathLike[str], filename: str = "stage_2_train_labels.csv") -> None:
        path = require_file(folder, filename)
        rows: dict[str, list[list[float]]] = {}
        label: dict[str, int] = {}
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                pid = row["patientId"]
                rows.setdefault(pid, [])
                label[pid] = max(label.get(pid, 0), int(float(row["Target"] or 0)))
                if row["x"].strip():
                    x, y, w, h = (float(row[k]) for k in ("x", "y", "width", "height"))
                    rows[pid].append([x, y, x + w, y + h])
        self.folder = Path(folder)
        self._targets = {
            pid: Target(boxes_array(b), np.ones(len(b), np.int64), label[pid], pid, study_positive=label[pid] == 1)
            for pid, b in rows.items()
        }

    def target(self, key: str) -> Target | None:
        return self._targets.get(key)

    def keys(self) -> set[str]:
        return set(self._targets)


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
