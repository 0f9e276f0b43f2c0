"""What a submission's values and ids must satisfy, checked before anything is written.

Values: every number finite; confidences in ``[0, 1]``; boxes ``0 <= x0 < x1``, ``0 <= y0 < y1``
(and within the image when its size is known); the "whole image" rows (SIIM's ``none`` and study
classes, VinBigData's ``14``) exactly ``conf 0 0 1 1``.  Ids: exactly the expected ones, once each.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

#: Class tokens whose box must be the whole-image placeholder ``0 0 1 1``.
WHOLE_IMAGE_TOKENS = frozenset({"none", "negative", "typical", "indeterminate", "atypical", "14"})
_WHOLE = (0.0, 0.0, 1.0, 1.0)


def check_values(classes: tuple[str, ...], scores: np.ndarray, boxes: np.ndarray, *, where: str,
                 size: tuple[float, float] | None = None) -> None:
    """Raise ``ValueError`` naming the first prediction of a row whose values cannot be right.

    Parameters
    ----------
    classes, scores, boxes
        The row's parsed predictions (``Prediction`` fields; boxes xyxy).
    where : str
        Names the row in the message.
    size : (width, height), optional
        The original image's size: boxes must lie within it.
    """
    for cls, score, box in zip(classes, scores, boxes, strict=True):
        x0, y0, x1, y1 = (float(v) for v in box)
        text = f"{cls + ' ' if cls else ''}{score:g} {x0:g} {y0:g} {x1:g} {y1:g}"
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"confidence outside [0, 1] in {text!r}{where}")
        if cls in WHOLE_IMAGE_TOKENS:
            if (x0, y0, x1, y1) != _WHOLE:
                raise ValueError(f"{cls!r} is a whole-image prediction: its box must be 0 0 1 1, got {text!r}{where}")
            continue
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"box with zero or negative size (needs x0 < x1 and y0 < y1) in {text!r}{where}")
        if x0 < 0 or y0 < 0:
            raise ValueError(f"box with a negative coordinate in {text!r}{where}")
        if size is not None and (x1 > size[0] or y1 > size[1]):
            raise ValueError(f"box outside the {size[0]:g} x {size[1]:g} image in {text!r}{where}")


def check_ids(ids: list[str], expected: Iterable[str] | None, competition: str) -> None:
    """Refuse duplicated ids, and (given ``expected``) missing or extra ones, naming a few of each."""
    if not ids:
        raise ValueError(f"empty {competition} submission: no rows to write")
    dup = sorted(k for k, n in Counter(ids).items() if n > 1)
    if dup:
        raise ValueError(f"duplicate id in {competition} submission: {_few(dup)}")
    if expected is None:
        return
    want = list(expected)
    wanted, got = set(want), set(ids)
    missing, extra = sorted(wanted - got), sorted(got - wanted)
    if missing or extra:
        raise ValueError(f"{competition} submission ids differ from the expected {len(wanted)}: "
                         f"{len(missing)} missing {_few(missing)}, {len(extra)} extra {_few(extra)}")


def sample_ids(path: str | os.PathLike[str], id_column: str) -> list[str]:
    """The ids of a competition's ``sample_submission.csv`` (its first column, checked by name)."""
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or header[0] != id_column:
            raise ValueError(f"{path}: a sample submission starts with the column {id_column!r}, got {header}")
        return [row[0] for row in reader if row]


def rows_of(rows: Any, id_column: str, value_column: str = "PredictionString") -> list[tuple[str, Any]]:
    """``(id, value)`` pairs from pairs or a pandas DataFrame (id column and ``value_column``).

    A missing value (``None``, a float or numpy NaN, ``pandas.NA``, ``pandas.NaT``) becomes ``""``, an empty
    prediction (which the competition's format then accepts or refuses); a missing id is refused.  Values
    that are not missing are kept as given (strings, or arrays for a writer that encodes them).
    """
    if hasattr(rows, "columns") and hasattr(rows, "itertuples"):
        missing = [c for c in (id_column, value_column) if c not in rows.columns]
        if missing:
            raise ValueError(f"the submission frame needs columns {id_column!r} and {value_column!r}, missing {missing}")
        pairs = list(zip(rows[id_column], rows[value_column], strict=True))
    else:
        pairs = list(rows)
    out = []
    for n, (row_id, value) in enumerate(pairs):
        if is_missing(row_id) or not str(row_id).strip():
            raise ValueError(f"submission row {n} has no {id_column} (a missing value: {row_id!r})")
        out.append((str(row_id), "" if is_missing(value) else value))
    return out


def is_missing(value: Any) -> bool:
    """Whether ``value`` is a missing scalar: ``None``, NaN of any float type, ``pandas.NA`` or ``pandas.NaT``."""
    if value is None:
        return True
    if isinstance(value, (str, bytes)) or int(getattr(value, "ndim", 0)):
        return False
    if type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return False


def size_of(sizes: Mapping[str, tuple[float, float]] | None, row_id: str) -> tuple[float, float] | None:
    """The image size of a row: keyed by its id, or by the id without SIIM's ``_image`` suffix."""
    if sizes is None:
        return None
    return sizes.get(row_id, sizes.get(row_id.removesuffix("_image")))


def _few(ids: list[str]) -> str:
    return str(ids[:5])[:-1] + (", ...]" if len(ids) > 5 else "]")
