"""The display-tag model: the Modality LUT, VOI LUT and Presentation LUT modules as plain values.

:func:`display_tags` reads them from a parsed header (per frame: per-frame, then
shared functional groups, then the top-level tags; PS3.3 C.7.6.16) without
importing pydicom, so the renderer that reads this model stays pure numpy.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import DicomXrayError, RenderWarning, UnsupportedImageError
from .syntaxes import EXPLICIT_BE

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["DisplayTags", "Lut", "TagSource", "display_tags"]

#: What pydicom raises when it converts a mangled element lazily.
MALFORMED = (ValueError, TypeError, KeyError, AttributeError, NotImplementedError, OverflowError, IndexError)


class TagSource(Protocol):
    """A parsed file to read display tags from (``dicomxray.dicom.header.Header``)."""

    @property
    def ds(self) -> Any: ...  # a pydicom Dataset, read through .get() only

    @property
    def path(self) -> str: ...

    @property
    def photometric(self) -> str: ...

    @property
    def transfer_syntax(self) -> str: ...

    @property
    def signed(self) -> bool: ...


@dataclass(frozen=True)
class Lut:
    """A LUT from a Modality or VOI LUT Sequence item (PS3.3 C.11.1, C.11.2).

    ``data[i]`` is the output for input ``first_mapped + i``; inputs below or
    above the table take its first or last entry.
    """

    first_mapped: int
    data: np.ndarray
    bits: int


@dataclass(frozen=True)
class DisplayTags:
    """Everything the renderer needs from the header besides the pixel format."""

    modality_lut: Lut | None
    rescale: tuple[float, float] | None
    voi_luts: tuple[Lut, ...]
    windows: tuple[tuple[float, float], ...]
    voi_function: str
    invert: bool  # MONOCHROME1 or Presentation LUT Shape INVERSE: invert exactly once




def _lut_from_item(item: Dataset, *, little_endian: bool, signed: bool, path: str) -> Lut:
    try:
        n, first, bits = (int(v) for v in item.LUTDescriptor)
        raw = item.LUTData
    except (AttributeError, KeyError, TypeError, ValueError):
        raise UnsupportedImageError(f"{path}: LUT Sequence item lacks a valid LUT Descriptor / LUT Data", path=path) from None
    n = n or 65536
    if signed and first >= 32768:  # descriptor read as US although the first mapped value is signed
        first -= 65536
    if isinstance(raw, (bytes, bytearray)):
        dtype: np.dtype = np.dtype("u1") if bits <= 8 and len(raw) == n else np.dtype("<u2" if little_endian else ">u2")
        data = np.frombuffer(raw, dtype=dtype, count=min(n, len(raw) // dtype.itemsize)).astype(np.float64)
    else:
        values = raw if isinstance(raw, (list, tuple)) or hasattr(raw, "__len__") else [raw]
        data = np.asarray(values, dtype=np.float64)[:n]
    if data.size == 0:
        raise UnsupportedImageError(f"{path}: LUT Sequence item has no LUT Data", path=path)
    return Lut(first, data, bits)


def _floats(value: object) -> tuple[float, ...]:
    if value is None or value == "":
        return ()
    items: Any = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    return tuple(float(v) for v in items)


def display_tags(header: TagSource, frame: int = 0) -> DisplayTags:
    """Read the Modality LUT, VOI LUT and Presentation LUT modules of ``header`` for ``frame``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tags, dropped = _display_tags(header, frame)
    except DicomXrayError:
        raise
    except MALFORMED as exc:
        raise UnsupportedImageError(f"{header.path}: malformed display tags ({type(exc).__name__}: {exc})",
                                    path=header.path) from None
    for center, width in dropped:
        warnings.warn(
            f"{header.path}: Window Center/Width {center:g}/{width:g} is invalid for VOI LUT Function "
            f"{tags.voi_function} (width must be {'>= 1' if tags.voi_function == 'LINEAR' else '> 0'}); "
            + ("using the next window" if tags.windows else "no window applied"),
            RenderWarning, stacklevel=2,
        )
    return tags


def _functional_groups(ds: Dataset, frame: int, sequence: str) -> list[Dataset]:
    """The ``sequence`` items that apply to ``frame``: per-frame first, then shared (PS3.3 C.7.6.16)."""
    found = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame) and per_frame[frame].get(sequence):
        found.append(per_frame[frame].get(sequence)[0])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and shared[0].get(sequence):
        found.append(shared[0].get(sequence)[0])
    return found


def _first_with(sources: list[Dataset], *names: str) -> Dataset:
    """The first source holding any of ``names`` (the dataset itself is the last source)."""
    return next((src for src in sources if any(src.get(n) not in (None, "") for n in names)), sources[-1])


def _valid_window(width: float, function: str) -> bool:
    """PS3.3 C.11.2.1.2: LINEAR needs Window Width >= 1; LINEAR_EXACT and SIGMOID need > 0."""
    return width >= 1 if function == "LINEAR" else width > 0


def _display_tags(header: TagSource, frame: int) -> tuple[DisplayTags, list[tuple[float, float]]]:
    ds, path = header.ds, header.path
    little = header.transfer_syntax != EXPLICIT_BE
    rescale_src = _first_with(_functional_groups(ds, frame, "PixelValueTransformationSequence") + [ds],
                              "RescaleSlope", "RescaleIntercept")
    voi_src = _first_with(_functional_groups(ds, frame, "FrameVOILUTSequence") + [ds], "WindowCenter", "VOILUTSequence")
    try:
        mlut = None
        items = [item for item in ds.get("ModalityLUTSequence") or [] if len(item)]  # an empty item is ignored
        if items:
            mlut = _lut_from_item(items[0], little_endian=little, signed=header.signed, path=path)
        rescale = None
        if "RescaleSlope" in rescale_src or "RescaleIntercept" in rescale_src:
            slope = float(rescale_src.get("RescaleSlope", 1) or 1)
            intercept = float(rescale_src.get("RescaleIntercept", 0) or 0)
            rescale = (slope, intercept)
        voi_luts = tuple(
            _lut_from_item(item, little_endian=little, signed=False, path=path)
            for item in voi_src.get("VOILUTSequence") or [] if len(item)
        )
        centers = _floats(voi_src.get("WindowCenter"))
        widths = _floats(voi_src.get("WindowWidth"))
    except (TypeError, ValueError) as exc:
        raise UnsupportedImageError(f"{path}: malformed display tags ({exc})", path=path) from None
    func = str(voi_src.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    pairs = list(zip(centers, widths, strict=False))  # a missing width drops that window
    windows = tuple(pair for pair in pairs if _valid_window(pair[1], func))
    dropped = [pair for pair in pairs if not _valid_window(pair[1], func)]
    shape = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
    invert = header.photometric == "MONOCHROME1" or shape == "INVERSE"
    return DisplayTags(mlut, rescale, voi_luts, windows, func, invert), dropped
