"""VinBigData Chest X-ray Abnormalities (Kaggle 2020): ``train.csv``, one row per box per radiologist."""

from __future__ import annotations

import csv
import os

import numpy as np

from .base import Target, boxes_array, require_file

VINBIG_CLASSES = (
    "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Consolidation", "ILD", "Infiltration",
    "Lung Opacity", "Nodule/Mass", "Other lesion", "Pleural effusion", "Pleural thickening", "Pneumothorax",
    "Pulmonary fibrosis", "No finding",
)


class VinBigData:
    """``image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max``; files are ``<image_id>.dicom``.

    Boxes of every radiologist are kept (fuse them in your own transform if
    you like); box label = ``class_id + 1``.  Image label: 0 when every
    radiologist said "No finding" (class 14), else 1.
    """

    classes: tuple[str, ...] = ("no_finding", "abnormal")
    box_classes: tuple[str, ...] = ("background", *VINBIG_CLASSES[:14])

    def __init__(self, folder: str | os.PathLike[str], filename: str = "train.csv") -> None:
        path = require_file(folder, filename)
        boxes: dict[str, list[list[float]]] = {}
        labels: dict[str, list[int]] = {}
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                iid = row["image_id"]
                boxes.setdefault(iid, [])
                labels.setdefault(iid, [])
                cid = int(row["class_id"])
                if cid != 14 and row["x_min"].strip():
                    boxes[iid].append([float(row[k]) for k in ("x_min", "y_min", "x_max", "y_max")])
                    labels[iid].append(cid + 1)
        self._targets = {
            iid: Target(boxes_array(boxes[iid]), np.asarray(labels[iid], np.int64), int(bool(labels[iid])), iid)
            for iid in boxes
        }

    def target(self, key: str) -> Target | None:
        return self._targets.get(key)

    def keys(self) -> set[str]:
        return set(self._targets)
