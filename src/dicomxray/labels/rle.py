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

from ..pixels.geometry import zeroed

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


def _fast_pairs(text: str) -> np.ndarray:
    """:func:`parse_rle` for the common form (ASCII digits and spaces, in pairs): numpy's parser, a seventh of the
    time of ``int`` per token.  Anything else goes through :func:`parse_rle` and its errors."""
    digits = text.replace(" ", "")
    if digits.isascii() and digits.isdigit():
        values = np.fromstring(text, dtype=np.int64, sep=" ")
        if len(values) % 2 == 0 and (values[1::2] >= 1).all():
            return values.reshape(-1, 2)
    return parse_rle(text)


def rle_runs(rle: str, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The absolute ``[start, end)`` column-major pixel ranges of ``rle``'s runs in a ``height x width`` image
    (increasing, disjoint; none for ``-1``).

    Raises
    ------
    ValueError
        For a malformed string, or runs that end past the image's ``height * width`` pixels.
    """
    pairs = _fast_pairs(rle)
    n = int(height) * int(width)
    if len(pairs) and int(pairs.max()) > n:  # before the sum, so that no huge value wraps around
        raise ValueError(f"a run value of {int(pairs.max())} in a {height} x {width} image ({n} pixels)")
    edges = np.cumsum(pairs.reshape(-1))  # start, end, start, end, ...
    end = int(edges[-1]) if len(edges) else 0
    if end > n:
        raise ValueError(f"runs end at pixel {end}, past the {height} x {width} image ({n} pixels)")
    return edges[0::2], edges[1::2]


def siim_acr_mask(rle: str, height: int, width: int) -> np.ndarray:
    """Decode one SIIM-ACR run-length string into a ``height x width`` uint8 mask (0/1).

    The runs are written into a zeroed column-major buffer (untouched pages cost nothing), and the mask is that
    buffer seen as ``height x width``: Fortran-ordered (``np.ascontiguousarray`` gives a C-ordered copy).

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
    starts, ends = rle_runs(rle, height, width)
    flat = np.zeros(int(height) * int(width), np.uint8)
    _fill(flat, starts, ends)
    return flat.reshape(int(width), int(height)).T


def siim_acr_mask_sampled(rle: str, height: int, width: int, rows: np.ndarray, cols: np.ndarray,
                          out: np.ndarray | None = None) -> np.ndarray:
    """``siim_acr_mask(rle, height, width)[np.ix_(rows, cols)]`` without decoding the other pixels.

    Parameters
    ----------
    rle : str
        As for :func:`siim_acr_mask`.
    height, width : int
        The image's Rows and Columns.
    rows, cols : numpy.ndarray
        Non-decreasing row and column indices inside the image (a nearest resize's samples:
        :func:`dicomxray.pixels.geometry.mask_samples`).
    out : numpy.ndarray, optional
        A ``len(rows) x len(cols)`` uint8 array the runs are set in (1), left as it is elsewhere: the union of
        several strings is one plane.

    Returns
    -------
    numpy.ndarray
        ``out``, or a new ``len(rows) x len(cols)`` uint8 0/1 mask.
    """
    starts, ends = rle_runs(rle, height, width)
    if out is None:
        out = np.zeros((len(rows), len(cols)), np.uint8)
    if len(starts):
        _fill_sampled(out, starts, ends, int(height), np.asarray(rows), np.asarray(cols))
    return out


def _fill(flat: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):  # tens to hundreds of runs: microseconds
        flat[a:b] = 1


def _fill_sampled(out: np.ndarray, starts: np.ndarray, ends: np.ndarray, height: int,
                  rows: np.ndarray, cols: np.ndarray) -> None:
    """Set the sampled pixels of the column-major runs ``[starts, ends)``: each run is a partial first column,
    whole middle columns and a partial last column, three rectangles of the sampled grid (found by bisection in
    ``rows`` and ``cols``), set by slice."""
    c0, c1 = starts // height, (ends - 1) // height
    r0, r1 = starts % height, (ends - 1) % height + 1
    left, right = np.searchsorted(cols, c0, "left"), np.searchsorted(cols, c0, "right")
    top, bottom = np.searchsorted(rows, r0, "left"), np.searchsorted(rows, r1, "left")
    multi = c1 > c0
    if multi.any():  # a run over several columns: the rest of its first, the whole middle ones, the top of its last
        m = np.flatnonzero(multi)
        last_lo, last_hi = np.searchsorted(cols, c1[m], "left"), np.searchsorted(cols, c1[m], "right")
        bottom = np.where(multi, len(rows), bottom)
        zero = np.zeros(len(m), top.dtype)
        top = np.concatenate([top, zero, zero])
        bottom = np.concatenate([bottom, np.full(len(m), len(rows)), np.searchsorted(rows, r1[m], "left")])
        left = np.concatenate([left, right[m], last_lo])
        right = np.concatenate([right, last_lo, last_hi])
    ok = (bottom > top) & (right > left)
    one = ok & (right - left == 1)  # most rectangles: one sampled column, a strided slice of the flat plane
    if one.any() and out.flags.c_contiguous:
        flat, w = out.reshape(-1), out.shape[1]
        for a, e in zip((top[one] * w + left[one]).tolist(), (bottom[one] * w + left[one]).tolist(), strict=True):
            flat[a:e:w] = 1
        ok &= ~one
    keep = np.flatnonzero(ok)
    for t, b, lo, hi in zip(top[keep].tolist(), bottom[keep].tolist(), left[keep].tolist(), right[keep].tolist(),
                            strict=True):
        out[t:b, lo:hi] = 1


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
        """``N x height x width`` uint8 planes (one, the union, with ``union``), column-major in memory."""
        runs = [r for r in self.rles if r.strip() != EMPTY_RLE]
        h, w = int(height), int(width)
        planes = np.zeros((1 if self.union and runs else len(runs), w * h), np.uint8)
        try:
            for n, r in enumerate(runs):
                _fill(planes[0 if self.union else n], *rle_runs(r, h, w))
        except ValueError as exc:
            raise ValueError(f"mask of {self.key or 'an image'}: {exc}") from None
        return planes.reshape(-1, w, h).transpose(0, 2, 1)

    def instances_sampled(self, height: int, width: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``instances(height, width)[:, rows][:, :, cols]``, decoding only those pixels (a nearest resize's)."""
        runs = [r for r in self.rles if r.strip() != EMPTY_RLE]
        planes = zeroed((1 if self.union and runs else len(runs), len(rows), len(cols)))
        try:
            for n, r in enumerate(runs):
                siim_acr_mask_sampled(r, height, width, rows, cols, out=planes[0 if self.union else n])
        except ValueError as exc:
            raise ValueError(f"mask of {self.key or 'an image'}: {exc}") from None
        return planes


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."
