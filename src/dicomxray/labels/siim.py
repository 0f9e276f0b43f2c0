"""SIIM-FISABIO-RSNA COVID-19 Detection (Kaggle 2021): study classes, opacity boxes, prediction strings."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ._csv import read_csv
from .base import KeyedTargets, Target, boxes_array, require_file

SIIM_STUDY_CLASSES = ("negative", "typical", "indeterminate", "atypical")
_STUDY_COLUMNS = ("Negative for Pneumonia", "Typical Appearance", "Indeterminate Appearance", "Atypical Appearance")
NoneInPositive = Literal["flag", "drop"]
_NONE_IN_POSITIVE = frozenset({"flag", "drop"})


class SiimCovid(KeyedTargets):
    """Labels read straight from the competition folder.

    ``train_study_level.csv`` gives each study a class (one-hot columns);
    ``train_image_level.csv`` gives each image its opacity boxes (the
    ``boxes`` column is a Python literal, ``x, y, width, height``).  Boxes
    become xyxy with label 1 (``opacity``); the image label is its study's
    class (0 negative, 1 typical, 2 indeterminate, 3 atypical) and
    ``study_positive`` says whether that class is not negative.

    Parameters
    ----------
    folder : path-like
        The competition folder (the two CSVs; images under ``train/``).
    none_in_positive : {"flag", "drop"}
        What to do with ``none`` images (no boxes) of positive studies: their
        missing boxes are missing annotation (usually another image of the study
        carries them), not a negative.  ``"flag"`` keeps them with
        ``Target.missing_annotation`` set (to mask their box loss); ``"drop"``
        leaves them out of ``keys()`` and ``target()``, so a dataset skips them.
    """

    classes: tuple[str, ...] = SIIM_STUDY_CLASSES
    box_classes: tuple[str, ...] = ("background", "opacity")

    def __init__(self, folder: str | os.PathLike[str], *, none_in_positive: NoneInPositive = "flag") -> None:
        if none_in_positive not in _NONE_IN_POSITIVE:
            raise ValueError(f"none_in_positive must be one of {sorted(_NONE_IN_POSITIVE)}, got {none_in_positive!r}")
        self.folder = Path(os.path.expanduser(os.fspath(folder)))
        self.none_in_positive = none_in_positive
        study_csv = require_file(self.folder, "train_study_level.csv")
        image_csv = require_file(self.folder, "train_image_level.csv")
        self.study_class: dict[str, int] = {}
        for row in read_csv(study_csv, required=("id", *_STUDY_COLUMNS)):
            sid = row["id"].removesuffix("_study")
            hot = [int(row.number(c)) for c in _STUDY_COLUMNS]
            if sum(hot) != 1:
                raise row.error(f"study {sid} is not one-hot: {hot}")
            self.study_class[sid] = hot.index(1)
        self._targets: dict[str, Target] = {}
        for row in read_csv(image_csv, required=("id", "StudyInstanceUID")):
            key = row["id"].removesuffix("_image")
            try:
                boxes = _parse_boxes(row.get("boxes"))
            except (ValueError, SyntaxError, KeyError, TypeError) as exc:
                raise row.error(f"cannot parse boxes ({exc})", "boxes") from None
            study = row["StudyInstanceUID"]
            cls = self.study_class.get(study, -1)
            positive = None if cls < 0 else cls != 0
            missing = bool(positive) and len(boxes) == 0
            if missing and none_in_positive == "drop":
                continue
            self._targets[key] = Target(
                boxes=boxes, box_labels=np.ones(len(boxes), np.int64), image_label=cls, study_id=study,
                study_positive=positive, missing_annotation=missing,
            )


def _parse_boxes(text: str | None) -> np.ndarray:
    if not text or not text.strip() or text.strip().lower() == "nan":
        return boxes_array([])
    items = ast.literal_eval(text)  # single-quoted dicts: a Python literal, not JSON
    return boxes_array([[b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]] for b in items])


def prediction_strings(
    boxes: np.ndarray | Sequence[Sequence[float]], scores: Iterable[float], *, none_score: float | None = None
) -> str:
    """An image row's ``PredictionString``: ``opacity conf x0 y0 x1 y1 ...`` in original pixels.

    Boxes must already be in original pixels (see :func:`dicomxray.labels.boxes_to_original_batch`).
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
