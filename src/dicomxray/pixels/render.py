"""The DICOM grayscale display chain, in pure numpy.

stored value -> Modality LUT (PS3.3 C.11.1) -> VOI LUT or window (C.11.2)
-> polarity (MONOCHROME1 / Presentation LUT Shape INVERSE, C.7.6.3.1.2 and
C.11.6) -> normalization -> output dtype.

For integer images of up to 16 bits the whole chain is evaluated once per
*possible stored value* (at most 65,536 of them) and folded into one lookup
table indexed by the raw sample bit pattern; the image then costs a single
``np.take``.  The arithmetic on each table entry is exactly the float64
arithmetic the classic per-pixel recipe performs, so the result is
bit-identical to it wherever the recipe is correct.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..config import RenderConfig
from ..dicom.display import DisplayTags, Lut

__all__ = ["RenderError", "RenderInfo", "apply_lut", "lookup", "render", "stored_value_map", "stored_values", "window"]

class RenderError(ValueError):
    """What the display chain cannot do with these tags (the pipeline names the file); any other
    exception is a bug, never reported as a bad file."""


_WINDOW_FUNCTIONS = frozenset({"LINEAR", "LINEAR_EXACT", "SIGMOID"})


@dataclass(frozen=True)
class RenderInfo:
    """What the chain did, for metadata and ``dicomxray info``."""

    modality: str  # "lut", "rescale", "none"
    voi: str  # e.g. "window 550/1024 LINEAR", "lut 0", "none"
    inverted: bool
    value_range: tuple[float, float]  # the VOI-output range mapped to [0, 1]
    blank: bool = False  # every pixel got the same output value (e.g. a window beside the data)


def apply_lut(values: np.ndarray, lut: Lut) -> np.ndarray:
    """Apply a Modality or VOI LUT to (possibly fractional) input values.

    Inputs are rounded to the nearest integer; those below ``first_mapped`` map
    to the first entry and those past the end to the last (PS3.3 C.11.1.1).
    """
    data = np.asarray(lut.data, dtype=np.float64)
    idx = np.rint(values).astype(np.int64) - lut.first_mapped
    np.clip(idx, 0, data.size - 1, out=idx)
    return data[idx]


def window(
    x: np.ndarray, center: float, width: float, function: str, y_min: float, y_max: float
) -> np.ndarray:
    """Window ``x`` onto ``[y_min, y_max]`` (PS3.3 C.11.2.1.2 and C.11.2.1.3).

    LINEAR uses ``c - 0.5`` and ``w - 1`` as the standard defines; LINEAR_EXACT
    uses ``c`` and ``w``; SIGMOID is ``y_range / (1 + exp(-4 (x - c) / w))``.
    """
    y_range = y_max - y_min
    x = np.asarray(x, dtype=np.float64)
    if function == "SIGMOID":
        if width <= 0:
            raise RenderError(f"Window Width must be > 0 for SIGMOID, got {width}")
        return y_range / (1 + np.exp(-4 * (x - center) / width)) + y_min
    if function == "LINEAR":
        if width < 1:
            raise RenderError(f"Window Width must be >= 1 for LINEAR, got {width}")
        center, width = center - 0.5, width - 1
    elif width <= 0:
        raise RenderError(f"Window Width must be > 0 for LINEAR_EXACT, got {width}")
    out = np.empty_like(x)
    below = x <= center - width / 2
    above = x > center + width / 2
    between = ~(below | above)
    out[below] = y_min
    out[above] = y_max
    out[between] = ((x[between] - center) / width + 0.5) * y_range + y_min if width else y_max
    return out


def stored_values(raw: np.ndarray, bits_allocated: int, bits_stored: int, signed: bool, clip: bool = False,
                  signed_values: bool = False) -> np.ndarray:
    """Stored values (int64) of raw samples ``raw`` (non-negative int64 bit patterns of ``bits_allocated``).

    Native Pixel Data holds bit patterns: bits above ``bits_stored`` are junk
    and masked off, then the value is sign-extended when ``signed`` (PS3.5
    8.1.1).  A codec returns *values* instead (two's complement of the array's
    width when ``signed_values``), and a lossy or reduced-resolution decode can
    overshoot the Bits Stored range: with ``clip`` those are clipped to the
    range, never wrapped into specks.
    """
    if clip:
        if signed_values:
            raw = np.where(raw >= 1 << (bits_allocated - 1), raw - (1 << bits_allocated), raw)
        return np.clip(raw, *_domain(bits_stored, signed))
    v = raw & ((1 << bits_stored) - 1)
    if signed:
        sign = 1 << (bits_stored - 1)
        v = (v ^ sign) - sign
    return v


@lru_cache(maxsize=64)
def stored_value_map(bits_allocated: int, bits_stored: int, signed: bool, clip: bool = False,
                     signed_values: bool = False) -> np.ndarray:
    """:func:`stored_values` of every possible bit pattern (0 .. 2**bits_allocated - 1), read-only and cached."""
    raw = np.arange(1 << bits_allocated, dtype=np.int64)
    v = stored_values(raw, bits_allocated, bits_stored, signed, clip, signed_values).astype(np.int32)
    v.setflags(write=False)
    return v


def _domain(bits_stored: int, signed: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1
    return 0, (1 << bits_stored) - 1


def _voi_chain(
    values: np.ndarray, tags: DisplayTags, cfg: RenderConfig, bits_stored: int, signed: bool
) -> tuple[np.ndarray, RenderInfo]:
    """Modality LUT then VOI on float64 ``values``; returns outputs and the nominal VOI range."""
    if tags.modality_lut is not None:
        x = apply_lut(values, tags.modality_lut)
        modality = "lut"
        bits = tags.modality_lut.bits
        y_min, y_max = 0.0, float(2**bits - 1)  # C.11.1.1.1: the LUT output is unsigned
    else:
        lo, hi = _domain(bits_stored, signed)
        y_min, y_max = float(lo), float(hi)
        if tags.rescale is not None:
            slope, intercept = tags.rescale
            x = values * slope + intercept
            modality = "rescale"
            # A negative slope swaps the ends; order them (pydicom's apply_windowing does not).
            y_min, y_max = sorted((y_min * slope + intercept, y_max * slope + intercept))
        else:
            x = values
            modality = "none"
    voi, value_range = "none", (y_min, y_max)
    if cfg.voi:
        use_lut = bool(tags.voi_luts) and (cfg.prefer_lut or not tags.windows)
        if use_lut:
            lut = tags.voi_luts[_pick(cfg.voi_index, len(tags.voi_luts), "VOI LUT")]
            x = apply_lut(x, lut)
            data = np.asarray(lut.data)
            voi, value_range = f"lut {cfg.voi_index}", (float(data.min()), float(data.max()))
        elif tags.windows:
            center, width = tags.windows[_pick(cfg.voi_index, len(tags.windows), "window")]
            func = tags.voi_function if tags.voi_function in _WINDOW_FUNCTIONS else None
            if func is None:
                raise RenderError(f"unsupported VOI LUT Function {tags.voi_function!r}")
            x = window(x, center, width, func, y_min, y_max)
            voi = f"window {center:g}/{width:g} {func}"
    if voi == "none":
        value_range = (float(np.min(x)), float(np.max(x))) if x.size else value_range
    return x, RenderInfo(modality, voi, False, value_range)


def _pick(index: int, count: int, what: str) -> int:
    if index >= count:
        raise RenderError(f"{what} index {index} requested but the file has {count}")
    return index


def _quantize(t: np.ndarray, dtype: str) -> np.ndarray:
    """Map [0, 1] floats to the output dtype; integers truncate like ``(x * 255).astype(uint8)``."""
    if dtype == "float32":
        return t.astype(np.float32)
    top = 255 if dtype == "uint8" else 65535
    return (t * top).astype(dtype)


def render(
    stored: np.ndarray,
    tags: DisplayTags,
    cfg: RenderConfig,
    *,
    bits_allocated: int,
    bits_stored: int,
    signed: bool,
    clip: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, RenderInfo]:
    """Render raw samples ``stored`` to a normalized ``cfg.dtype`` image.

    Parameters
    ----------
    stored : ndarray of integers
        Raw samples: bit patterns (native data) or codec output values.
    tags : DisplayTags
        Modality LUT, VOI and polarity information from the header.
    cfg : RenderConfig
        VOI, polarity and normalization options.
    clip : bool
        ``stored`` comes from a codec: values outside the Bits Stored range are
        overshoot and are clipped (signed arrays hold values, unsigned arrays of
        a signed image hold bit patterns and are masked as usual); ``False``
        masks bits above Bits Stored, as native data needs (PS3.5 8.1.1).
    out : ndarray, optional
        Where to write the image (``stored``'s shape, ``cfg.dtype``, C-contiguous): a buffer the caller reuses
        for an intermediate image, so no fresh memory is touched per image.  Images wider than 16 bits (no
        table) ignore it.

    Returns
    -------
    image, info
        The rendered image (same shape as ``stored``) and what was applied.
    """
    if stored.dtype.kind not in "ui":
        raise RenderError(f"stored values must be integers, got {stored.dtype}")
    signed_values = stored.dtype.kind == "i"
    clip = clip and (signed_values or not signed)
    if bits_allocated > 16 or stored.dtype.itemsize > 2:
        return _render_direct(stored, tags, cfg, bits_stored=bits_stored, signed=signed, clip=clip)

    if stored.dtype.itemsize * 8 != bits_allocated:
        stored = stored.astype(f"{stored.dtype.kind}{bits_allocated // 8}")
    raw = stored.view(f"u{stored.dtype.itemsize}")
    key = (raw.dtype.itemsize * 8, bits_stored, signed, clip, signed_values and clip)
    vmap = stored_value_map(*key)
    lo, _hi = _domain(bits_stored, signed)
    values = np.arange(lo, lo + (1 << bits_stored), dtype=np.float64)
    y, info = _voi_chain(values, tags, cfg, bits_stored, signed)
    invert = cfg.polarity and tags.invert

    if cfg.normalize == "minmax":
        present = _present_range(raw, vmap, y, lo)
        t = _minmax(y, present, invert)
        blank = present[0] == present[1]
    else:
        if cfg.normalize == "window":
            a, b = info.value_range
            ymin, ymax = _present_range(raw, vmap, y, lo)
            blank = not (ymax > a and ymin < b)
        else:
            a, b = _percentiles(raw, vmap, y, lo, cfg.percentiles)
            blank = a == b
        t = _stretch(y, a, b, invert)
    table = _quantize(t, cfg.dtype)[_table_rows(*key)]
    image = lookup(table, raw, out=out)
    return image, RenderInfo(info.modality, info.voi, invert, info.value_range, blank)


@lru_cache(maxsize=64)
def _table_rows(bits_allocated: int, bits_stored: int, signed: bool, clip: bool, signed_values: bool) -> np.ndarray:
    """Each bit pattern's row in the per-stored-value table (:func:`stored_value_map` minus the domain's
    lowest value), read-only and cached like the map."""
    rows = stored_value_map(bits_allocated, bits_stored, signed, clip, signed_values) - _domain(bits_stored, signed)[0]
    rows.setflags(write=False)
    return rows


_CHUNK = 1 << 16


def lookup(table: np.ndarray, raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``table[raw]`` in cache-sized chunks, into ``out`` when given.

    numpy converts the whole index array to intp before gathering (a 40 MB
    temporary for a 5-megapixel image); chunks of 64 Ki samples keep that in
    cache.  ``raw`` is unsigned and ``table`` has an entry for each of its
    bit patterns, so every index is in range: ``mode="wrap"`` never wraps and
    gives ``table[raw]`` exactly, but skips numpy's per-index bounds error path
    (measured on a shared 2-core Xeon, 2500x2048 uint16: 3.0 ms against 4.0 ms
    for the default ``mode="raise"``, and 9-15 ms for one unchunked ``np.take``).
    """
    if table.size < 1 << (8 * raw.dtype.itemsize) or raw.dtype.kind != "u":
        raise ValueError(f"a lookup needs an entry for every {raw.dtype} bit pattern, got {table.size}")
    flat = raw.reshape(-1)
    if out is None:
        dest = np.empty(flat.size, dtype=table.dtype)
    else:
        if out.shape != raw.shape or out.dtype != table.dtype or not out.flags.c_contiguous:
            raise ValueError(f"out must be C-contiguous {table.dtype} of shape {raw.shape}, got {out.dtype} "
                             f"{out.shape}")
        dest = out.reshape(-1)
    for i in range(0, flat.size, _CHUNK):
        np.take(table, flat[i : i + _CHUNK], out=dest[i : i + _CHUNK], mode="wrap")
    return dest.reshape(raw.shape)


def _minmax(y: np.ndarray, present: tuple[float, float], invert: bool) -> np.ndarray:
    """The classic recipe's arithmetic, on table entries instead of pixels."""
    ymin, ymax = present
    if invert:
        y = ymax - y
        ymin, ymax = 0.0, ymax - ymin
    y = y - ymin
    span = ymax - ymin
    return y / span if span > 0 else np.zeros_like(y)


def _stretch(y: np.ndarray, a: float, b: float, invert: bool) -> np.ndarray:
    t = np.clip((y - a) / (b - a), 0.0, 1.0) if b > a else np.zeros_like(y)
    return 1.0 - t if invert else t


def _present_range(raw: np.ndarray, vmap: np.ndarray, y: np.ndarray, lo: int) -> tuple[float, float]:
    """Min and max of the chain's output over the stored values present in the image."""
    rmin, rmax = _min_max(raw.view(f"i{raw.dtype.itemsize}") if lo < 0 else raw)
    n = y.size
    if lo <= rmin and rmax < lo + n:  # raw values already are stored values (no stray high bits)
        seg = y[rmin - lo : rmax - lo + 1]
        d = np.diff(seg)
        if (d >= 0).all() or (d <= 0).all():  # monotone: the extremes sit at the ends
            return float(min(seg[0], seg[-1])), float(max(seg[0], seg[-1]))
    present = np.bincount(raw.ravel(), minlength=vmap.size).astype(bool)
    ys = y[vmap[present] - lo]
    return float(ys.min()), float(ys.max())


_MINMAX_CHUNK = 1 << 18


def _min_max(a: np.ndarray) -> tuple[int, int]:
    """``(a.min(), a.max())`` of a non-empty integer array, in chunks of 256 Ki samples: the second pass over
    each chunk reads it from cache, not memory (2500x2048 uint16 on a shared 2-core Xeon: 0.51 ms against
    0.71 ms for the two whole-array passes)."""
    flat = a.reshape(-1)
    if not flat.size:
        return int(a.min()), int(a.max())  # numpy's error for an empty array
    lo, hi = int(flat[0]), int(flat[0])
    for i in range(0, flat.size, _MINMAX_CHUNK):
        part = flat[i : i + _MINMAX_CHUNK]
        lo, hi = min(lo, int(part.min())), max(hi, int(part.max()))
    return lo, hi


def _percentiles(
    raw: np.ndarray, vmap: np.ndarray, y: np.ndarray, lo: int, pct: tuple[float, float]
) -> tuple[float, float]:
    counts = np.bincount(raw.ravel(), minlength=vmap.size)
    nz = counts > 0
    return _weighted_percentiles(y[vmap[nz] - lo], counts[nz], pct)


def _weighted_percentiles(ys: np.ndarray, ws: np.ndarray, pct: tuple[float, float]) -> tuple[float, float]:
    """Nearest-rank percentiles of values ``ys`` occurring ``ws`` times each (one rule for both paths)."""
    order = np.argsort(ys, kind="stable")
    ys, cum = ys[order], np.cumsum(ws[order])
    total = cum[-1]
    a = ys[min(np.searchsorted(cum, total * pct[0] / 100.0, side="left"), ys.size - 1)]
    b = ys[min(np.searchsorted(cum, total * pct[1] / 100.0, side="left"), ys.size - 1)]
    return float(a), float(b)


def _render_direct(
    stored: np.ndarray, tags: DisplayTags, cfg: RenderConfig, *, bits_stored: int, signed: bool, clip: bool
) -> tuple[np.ndarray, RenderInfo]:
    """Per-pixel chain for images wider than 16 bits (no table would fit)."""
    bits = stored.dtype.itemsize * 8
    raw = stored.view(f"u{stored.dtype.itemsize}").astype(np.int64)
    values = stored_values(raw, bits, bits_stored, signed, clip, stored.dtype.kind == "i")
    y, info = _voi_chain(values.astype(np.float64), tags, cfg, bits_stored, signed)
    invert = cfg.polarity and tags.invert
    if cfg.normalize == "minmax":
        t = _minmax(y, (float(y.min()), float(y.max())), invert)
    elif cfg.normalize == "window":
        t = _stretch(y, *info.value_range, invert)
    else:
        t = _stretch(y, *_weighted_percentiles(y.ravel(), np.ones(y.size, np.int64), cfg.percentiles), invert)
    blank = bool(t.size) and float(t.min()) == float(t.max())
    return _quantize(t, cfg.dtype), RenderInfo(info.modality, info.voi, invert, info.value_range, blank)
