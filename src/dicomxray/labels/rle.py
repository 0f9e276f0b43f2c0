"""SIIM-ACR Pneumothorax's run-length encoding (the competition's ``mask_functions.py``), both ways.

The encoding is **column-major** (pixel index ``x * height + y``), **0-based** and **relative**: the
numbers come in pairs ``start length``, where the first start is absolute and each later one is the gap
from the end of the previous run.  ``-1`` is an empty mask.  The competition's own ``mask2rle`` drops a
run that reaches the last pixel; :func:`siim_acr_rle` does not.  (CheXmask's RLE is absolute, 1-based
and row-major: a different code, never decoded here.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The encoding of an empty mask.
EMPTY_RLE = "-1"


def parse_rle(text: str) -> np.ndarray:
    """The ``K x 2`` int64 ``(gap, length)`` pairs of a run-length string (``K = 0`` for ``-1``).

    Raises
    ------
    ValueError
        When it is not ``-1`` or an even number of integers with every gap >= 0 and length >= 1.
    """
    tokens = text.split()
    if tokens == [EMPTY_RLE]:
        return np.zeros((0, 2), np.int64)
    if not tokens:
        raise ValueError(f"empty run-length string: write {EMPTY_RLE!r} for an empty mask")
    try:
        values = np.asarray([int(t) for t in tokens], np.int64)
    except ValueError:
        raise ValueError(f"run-length values must be integers, got {_short(text)!r}") from None
    if len(values) % 2:
        raise ValueError(f"run-length values come in pairs (start length), got {len(values)}: {_short(text)!r}")
    pairs = values.reshape(-1, 2)
    if (pairs[:, 0] < 0).any():
        raise ValueError(f"negative run start in {_short(text)!r}")
    if (pairs[:, 1] < 1).any():
        raise ValueError(f"run of length < 1 in {_short(text)!r}")
    return pairs


def rle_pixels(text: str) -> int:
    """The number of pixels the runs of ``text`` span (the end of its last run): the image holds at least as many."""
    pairs = parse_rle(text)
    return int(pairs.sum())


def siim_acr_mask(rle: str, height: int, width: int) -> np.ndarray:
    """Decode one SIIM-ACR run-length string into a ``height x width`` uint8 mask (0/1).

    Parameters
    ----------
    rle : str
        ``start length ...`` (relative starts, column-major, 0-based) or ``-1``.
    height, width : int
        The image's Rows and Columns.

    Raises
    ------
    ValueError
        For a malformed string, or runs that end past the image's ``height * width`` pixels.
    """
    pairs = parse_rle(rle)
    n = int(height) * int(width)
    end = int(pairs.sum())
    if end > n:
        raise ValueError(f"runs end at pixel {end}, past the {height} x {width} image ({n} pixels)")
    counts = np.append(pairs.reshape(-1), n - end)            # gap, run, gap, run, ..., the rest
    values = np.resize(np.array([0, 1], np.uint8), len(counts))
    column_major = np.repeat(values, counts).reshape(int(width), int(height))
    return np.ascontiguousarray(column_major.T)


def siim_acr_rle(mask: np.ndarray) -> str:
    """Encode an ``H x W`` mask (nonzero = positive) as SIIM-ACR's run-length string; ``-1`` when empty.

    Unlike the competition's ``mask2rle``, a run that reaches the last pixel is kept.
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"expected one H x W mask, got shape {arr.shape}")
    flat = (arr.T.reshape(-1) != 0).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flat, [0]))))
    if not len(edges):
        return EMPTY_RLE
    starts, ends = edges[0::2], edges[1::2]
    gaps = starts - np.concatenate(([0], ends[:-1]))
    return " ".join(f"{g} {n}" for g, n in zip(gaps.tolist(), (ends - starts).tolist(), strict=True))


@dataclass(frozen=True)
class RleMasks:
    """A :class:`~dicomxray.labels.MaskSource` of SIIM-ACR run-length strings, decoded when asked.

    Attributes
    ----------
    rles : tuple of str
        One string per instance (an image's rows); ``-1`` rows are none.
    union : bool
        Give one plane, the union of the instances, rather than one per instance.
    key : str
        The image, named in errors.
    """

    rles: tuple[str, ...]
    union: bool = False
    key: str = ""

    def instances(self, height: int, width: int) -> np.ndarray:
        try:
            planes = [siim_acr_mask(r, height, width) for r in self.rles if r.strip() != EMPTY_RLE]
        except ValueError as exc:
            raise ValueError(f"mask of {self.key or 'an image'}: {exc}") from None
        if not planes:
            return np.zeros((0, height, width), np.uint8)
        stack = np.stack(planes)
        return stack.max(0, keepdims=True) if self.union else stack


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."
