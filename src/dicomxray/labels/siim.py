"""SIIM-FISABIO-RSNA COVID-19 Detection (Kaggle 2021): study classes, opacity boxes, submissions."""

from __future__ import annotations

import ast
import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..errors import DicomXrayError
from .base import Target, boxes_array, require_file

SIIM_STUDY_CLASSES = ("negative", "typical", "indeterminate", "atypical")
_STUDY_COLUMNS = ("Negative for Pneumonia", "Typical Appearance", "Indeterminate Appearance", "Atypical Appearance")


class SiimCovid:
    """Labels read straight from the competition folder.

    ``train_study_level.csv`` gives each study a class (one-hot columns);
    ``train_image_level.csv`` gives each image its opacity boxes (the
    ``boxes`` column is a Python literal, ``x, y, width, height``).  Boxes
    become xyxy with label 1 (``opacity``); the image label is its study's
    class.
    """

    classes: tuple[str, ...] = SIIM_STUDY_CLASSES
    box_classes: tuple[str, ...] = ("background", "opacity")

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(os.path.expanduser(os.fspath(folder)))
        study_csv = require_file(self.folder, "train_study_level.csv")
        image_csv = require_file(self.folder, "train_image_level.csv")
        self.study_class: dict[str, int] = {}
        with open(study_csv, newline="") as fh:
            for row in csv.DictReader(fh):
                sid = row["id"].removesuffix("_study")
                hot = [int(float(row[c])) for c in _STUDY_COLUMNS]
                if sum(hot) != 1:
                    raise DicomXrayError(f"{study_csv}: study {sid} is not one-hot: {hot}", path=str(study_csv))
                self.study_class[sid] = hot.index(1)
        self._targets: dict[str, Target] = {}
        with open(image_csv, newline="") as fh:
            for line, row in enumerate(csv.DictReader(fh), start=2):
                key = row["id"].removesuffix("_image")
                try:
                    boxes = _parse_boxes(row.get("boxes", ""))
                except (ValueError, SyntaxError, KeyError, TypeError) as exc:
                    raise DicomXrayError(f"{image_csv}:{line}: cannot parse boxes ({exc})", path=str(image_csv)) from None
                study = row["StudyInstanceUID"]
                self._targets[key] = Target(
                    boxes=boxes, box_labels=np.ones(len(boxes), np.int64),
                    image_label=self.study_class.get(study, -1), study_id=study,
                )

    def target(self, key: str) -> Target | None:
        return self._targets.get(key)

    def keys(self) -> set[str]:
        return set(self._targets)


def _parse_boxes(text: str | None) -> np.ndarray:
    if not text or not text.strip() or text.strip().lower() == "nan":
        return boxes_array([])
    items = ast.literal_eval(text)  # single-quoted dicts: a Python literal, not JSON
    return boxes_array([[b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]] for b in items])


def prediction_strings(
    boxes: np.ndarray | Sequence[Sequence[float]], scores: Iterable[float], *, none_score: float | None = None
) -> str:
    """An image row's ``PredictionString``: ``opacity conf x0 y0 x1 y1 ...`` in original pixels.

    Boxes must already be in original pixels (see :func:`dicomxray.boxes_to_original`).
    With no boxes, ``none 1 0 0 1 1``; ``none_score`` appends a ``none`` guess too.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    parts = [f"opacity {s:.6g} {x0:.1f} {y0:.1f} {x1:.1f} {y1:.1f}" for s, (x0, y0, x1, y1) in zip(scores, b, strict=True)]
    if none_score is not None:
        parts.append(f"none {none_score:.6g} 0 0 1 1")
    return " ".join(parts) if parts else "none 1 0 0 1 1"


def study_prediction_string(probabilities: Sequence[float]) -> str:
    """A study row: ``negative p 0 0 1 1 typical p 0 0 1 1 indeterminate p 0 0 1 1 atypical p 0 0 1 1``."""
    if len(probabilities) != 4:
        raise ValueError(f"expected 4 class probabilities, got {len(probabilities)}")
    return " ".join(f"{name} {p:.6g} 0 0 1 1" for name, p in zip(SIIM_STUDY_CLASSES, probabilities, strict=True))


def write_submission(rows: Iterable[tuple[str, str]], path: str | os.PathLike[str]) -> Path:
    """Write ``id,PredictionString`` rows (ids end in ``_image`` or ``_study``)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "PredictionString"])
        writer.writerows(rows)
    return out
