"""RSNA Pneumonia Detection (Kaggle 2018): ``stage_2_train_labels.csv``, one row per box."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from .base import Target, boxes_array, require_file


class RsnaPneumonia:
    """``patientId,x,y,width,height,Target``; negatives have empty coordinates and Target 0.

    Image label: ``Target`` (0 normal/no opacity, 1 lung opacity); boxes get label 1.
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
            pid: Target(boxes_array(b), np.ones(len(b), np.int64), label[pid], pid) for pid, b in rows.items()
        }

    def target(self, key: str) -> Target | None:
        return self._targets.get(key)

    def keys(self) -> set[str]:
        return set(self._targets)
