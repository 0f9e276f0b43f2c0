"""Multi-label findings with uncertainty: one cell of a labeler's CSV to ``1``, ``0`` or NaN (unknown), by a named policy.

The CheXpert labeler's convention (Irvin et al. 2019), which MIMIC-CXR's label files and most hospital exports
follow: ``1`` positive, ``0`` negative, ``-1`` uncertain, blank not mentioned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from ._csv import CsvRow

Uncertain = Literal["ignore", "zeros", "ones"]
Unmentioned = Literal["ignore", "zeros"]
_UNCERTAIN = {"ignore": math.nan, "zeros": 0.0, "ones": 1.0}
_UNMENTIONED = {"ignore": math.nan, "zeros": 0.0}


def check_policy(uncertain: str, unmentioned: str) -> None:
    """Refuse an unknown policy name."""
    if uncertain not in _UNCERTAIN:
        raise ValueError(f"uncertain must be one of {sorted(_UNCERTAIN)}, got {uncertain!r}")
    if unmentioned not in _UNMENTIONED:
        raise ValueError(f"unmentioned must be one of {sorted(_UNMENTIONED)}, got {unmentioned!r}")


def findings(row: CsvRow, columns: Sequence[str], uncertain: Uncertain, unmentioned: Unmentioned) -> np.ndarray:
    """``len(columns)`` float32 values of ``row``: ``1``/``0`` as written, ``-1`` by ``uncertain``, blank by ``unmentioned``.

    ``"ignore"`` makes the value NaN (unknown: masked out of the loss); ``"zeros"``/``"ones"`` make it 0/1.

    Raises
    ------
    LabelFormatError
        For any other value, naming the file, row and column.
    """
    out = np.empty(len(columns), np.float32)
    for j, column in enumerate(columns):
        text = row.text(column)
        if not text:
            out[j] = _UNMENTIONED[unmentioned]
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if value == 1.0 or value == 0.0:
            out[j] = value
        elif value == -1.0:
            out[j] = _UNCERTAIN[uncertain]
        else:
            raise row.error(f"expected 1, 0, -1 (uncertain) or blank (not mentioned), got {text!r}", column)
    return out
