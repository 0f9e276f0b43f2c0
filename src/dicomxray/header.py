"""Reading the tags the pipeline needs, with guards, before any pixel is decoded.

The whole file is read with one ``read`` call and parsed from memory, so a
file replaced while we read it gives either the old or the new bytes, never a
mix.  Guards run before any pixel buffer is allocated: a missing Pixel Data
element, a missing transfer syntax on encapsulated data, an unsupported
photometric interpretation, and a declared Rows x Columns x Frames over the
configured limit (files exist that declare gigabytes).
"""

from __future__ import annotations

import io
import os
import warnings
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .config import DEFAULT_MAX_PIXELS
from .errors import (
    DicomXrayError,
    DicomXrayWarning,
    ImageTooLargeError,
    MissingPixelDataError,
    NotDicomError,
    SourceChangedError,
    SourceFileNotFoundError,
    UnsupportedImageError,
)

__all__ = ["FileIdentity", "Header", "read_header", "file_identity"]

_GRAYSCALE = frozenset({"MONOCHROME1", "MONOCHROME2"})
#: Bytes a Pixel Data element may exceed its declared need by before we call it suspicious.
_MAX_FILE_OVERHEAD = 64 * 1024 * 1024


@dataclass(frozen=True)
class FileIdentity:
    """What identifies a file's content cheaply: resolved path, size and mtime (ns)."""

    path: str
    size: int
    mtime_ns: int


def file_identity(path: str | os.PathLike[str]) -> FileIdentity:
    """Return the :class:`FileIdentity` of ``path`` or raise ``SourceFileNotFoundError``."""
    p = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise SourceFileNotFoundError(f"{p}: file not found", path=p) from None
    return FileIdentity(p, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Header:
    """The pixel-describing tags of one file, its dataset and its raw Pixel Data.

    Decoding ``pixel_data`` is the job of :mod:`dicomxray.decode`.
    """

    path: str
    ds: Dataset  # without Pixel Data
    pixel_data: memoryview  # the raw Pixel Data value, native or encapsulated
    transfer_syntax: UID
    rows: int
    columns: int
    frames: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    identity: FileIdentity

    @property
    def signed(self) -> bool:
        return self.pixel_representation == 1

    def tag_text(self, name: str) -> str:
        """A tag's value as text ('' when absent or unreadable), without pydicom's validation warnings."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return str(self.ds.get(name, "") or "")
            except _MALFORMED:  # a mangled VR: metadata only, the pixels are still right
                return ""

    @property
    def frame_pixels(self) -> int:
        return self.rows * self.columns * self.samples_per_pixel


def _fallback_syntax(ds: Dataset) -> UID:
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _int_tag(ds: Dataset, name: str, path: str, default: int | None = None) -> int:
    value = ds.get(name, default)
    if value is None or value == "":
        raise MissingPixelDataError(f"{path}: required tag {name} is missing", path=path)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MissingPixelDataError(f"{path}: tag {name} has a non-integer value {value!r}", path=path) from None


def _looks_like_bare_dataset(data: bytes) -> bool:
    """A file without preamble must start with an even group tag of the header modules (0002..0028)."""
    if len(data) < 8:
        return False
    order: Literal["little", "big"]
    for order in ("little", "big"):
        group = int.from_bytes(data[:2], order)
        if group % 2 == 0 and 0x0002 <= group <= 0x0028:
            return True
    return False


#: What pydicom raises when it converts a mangled element lazily.
_MALFORMED = (ValueError, TypeError, KeyError, AttributeError, NotImplementedError, OverflowError, IndexError)

_LONG_VRS = frozenset({b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"})


def _pixel_element(data: bytes, offset: int, implicit: bool, little: bool) -> tuple[memoryview, bool] | None:
    """Locate the Pixel Data value at ``offset`` without copying it: (value view, undefined length)."""
    order: Literal["little", "big"] = "little" if little else "big"
    if offset + 8 > len(data):
        return None
    group = int.from_bytes(data[offset : offset + 2], order)
    elem = int.from_bytes(data[offset + 2 : offset + 4], order)
    if (group, elem) != (0x7FE0, 0x0010):
        return None
    if implicit:
        length, start = int.from_bytes(data[offset + 4 : offset + 8], order), offset + 8
    elif bytes(data[offset + 4 : offset + 6]) in _LONG_VRS:
        length, start = int.from_bytes(data[offset + 8 : offset + 12], order), offset + 12
    else:
        length, start = int.from_bytes(data[offset + 6 : offset + 8], order), offset + 8
    view = memoryview(data)
    if length == 0xFFFFFFFF:
        return view[start:], True
    return view[start : start + length], False


_DEFLATED_UID = str(DeflatedExplicitVRLittleEndian).encode()


def _parse_deflated(data: bytes) -> tuple[Dataset, tuple[memoryview, bool] | None] | None:
    """Inflate a Deflated Explicit VR LE body once and parse it like any other (PS3.5 A.5).

    pydicom inflates the whole body on every ``dcmread``; doing it here once
    halves the cost.  Returns ``None`` when the file meta is not deflated after all.
    """
    from pydicom.filereader import _read_file_meta_info as read_meta
    from pydicom.filereader import read_preamble

    fp = io.BytesIO(data)
    read_preamble(fp, force=True)
    meta = read_meta(fp)
    if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return None
    body = zlib.decompress(data[fp.tell() :], -zlib.MAX_WBITS)
    buffer = io.BytesIO(body)
    ds = pydicom.dcmread(buffer, force=True, stop_before_pixels=True)
    ds.file_meta = meta
    return ds, _pixel_element(body, buffer.tell(), implicit=False, little=True)


def parse_dataset(data: bytes, path: str) -> tuple[Dataset, memoryview | None, bool]:
    """Parse DICOM bytes (preamble optional); or raise ``NotDicomError``.

    Returns the dataset without Pixel Data, a zero-copy view of the Pixel
    Data value (``None`` when absent) and whether it has undefined length
    (encapsulated).  Copying a 10 MB value through pydicom cost ~5 ms.
    """
    if data[128:132] != b"DICM" and not _looks_like_bare_dataset(data):
        raise NotDicomError(f"{path}: not a DICOM file (no DICM magic at byte 128, no DICOM tag at the start)", path=path)
    buffer = io.BytesIO(data)
    floats: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = _parse_deflated(data) if _DEFLATED_UID in data[:4096] else None
            if parsed is not None:
                ds, found = parsed
            else:
                ds = pydicom.dcmread(buffer, force=True, stop_before_pixels=True)
                implicit, little = ds.original_encoding
                found = _pixel_element(data, buffer.tell(), bool(implicit), little is not False)
            if found is None:  # something unusual: let pydicom parse it all
                full = pydicom.dcmread(io.BytesIO(data), force=True)
                if "PixelData" in full:
                    elem = full["PixelData"]
                    found = memoryview(bytes(elem.value)), bool(elem.is_undefined_length)
                floats = [k for k in ("FloatPixelData", "DoubleFloatPixelData") if k in full]
        except Exception as exc:  # pydicom raises many kinds on garbage; name the file
            raise NotDicomError(f"{path}: not a readable DICOM file ({type(exc).__name__}: {exc})", path=path) from None
    if found is None and floats:
        raise UnsupportedImageError(
            f"{path}: unsupported float pixels ({floats[0]}); dicomxray reads integer Pixel Data (7FE0,0010) only",
            path=path,
        )
    if len(ds) == 0:
        raise NotDicomError(f"{path}: not a DICOM file (no data elements)", path=path)
    if found is None:
        return ds, None, False
    return ds, found[0], found[1]


def _read_consistent(p: str, max_pixels: int, attempts: int = 3) -> tuple[bytes, FileIdentity]:
    """Read the whole file with one ``read``; retry if it changed in place meanwhile.

    ``fstat`` on the open descriptor before and after the read must agree: a
    file rewritten while we read it would otherwise give a mixed image.  A
    file replaced by rename is safe by construction (we hold the old inode).
    """
    for _ in range(attempts):
        try:
            with open(p, "rb") as fh:
                before = os.fstat(fh.fileno())
                if before.st_size > max_pixels * 4 + _MAX_FILE_OVERHEAD:
                    raise ImageTooLargeError(
                        f"{p}: file is {before.st_size} bytes, more than an image of max_pixels={max_pixels} can need",
                        path=p,
                    )
                data = fh.read()
                after = os.fstat(fh.fileno())
        except FileNotFoundError:
            raise SourceFileNotFoundError(f"{p}: file not found", path=p) from None
        except IsADirectoryError:
            raise NotDicomError(f"{p}: is a directory, not a DICOM file", path=p) from None
        if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns) == (len(data), after.st_mtime_ns):
            return data, FileIdentity(p, len(data), before.st_mtime_ns)
    raise SourceChangedError(f"{p}: file kept changing while being read ({attempts} attempts)", path=p)


def read_header(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Header:
    """Read ``path`` and validate everything needed to decode its pixels.

    Raises
    ------
    SourceFileNotFoundError, SourceChangedError, NotDicomError, MissingPixelDataError,
    UnsupportedImageError, ImageTooLargeError
    """
    p = os.path.abspath(os.fspath(path))
    data, identity = _read_consistent(p, max_pixels)
    ds, pixel_data, encapsulated = parse_dataset(data, p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _validate(ds, pixel_data, encapsulated, p, identity=identity, max_pixels=max_pixels)
    except DicomXrayError:
        raise
    except _MALFORMED as exc:  # pydicom converts values lazily: a mangled tag fails here, not while parsing
        raise NotDicomError(f"{p}: malformed DICOM header ({type(exc).__name__}: {exc})", path=p) from None


def _validate(
    ds: Dataset, pixel_data: memoryview | None, encapsulated: bool, path: str, *, identity: FileIdentity,
    max_pixels: int,
) -> Header:
    """Check the pixel-describing tags of a parsed dataset (see :func:`read_header`)."""
    if pixel_data is None:
        raise MissingPixelDataError(f"{path}: no Pixel Data (7FE0,0010)", path=path)

    meta = getattr(ds, "file_meta", None)
    tsyntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not tsyntax:
        if encapsulated:
            raise MissingPixelDataError(
                f"{path}: compressed Pixel Data but the file meta has no Transfer Syntax UID",
                path=path,
            )
        tsyntax = _fallback_syntax(ds)  # what viewers do: trust the dataset encoding
    tsyntax = UID(str(tsyntax))

    rows = _int_tag(ds, "Rows", path)
    cols = _int_tag(ds, "Columns", path)
    bits_allocated = _int_tag(ds, "BitsAllocated", path)
    bits_stored = _int_tag(ds, "BitsStored", path, bits_allocated)
    pixel_rep = _int_tag(ds, "PixelRepresentation", path, 0)
    spp = _int_tag(ds, "SamplesPerPixel", path, 1)
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        frames = 1
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()

    if rows <= 0 or cols <= 0 or frames <= 0:
        raise MissingPixelDataError(f"{path}: declared image size {rows}x{cols}x{frames} is empty", path=path)
    declared = rows * cols * frames * spp
    if declared > max_pixels:
        raise ImageTooLargeError(
            f"{path}: declares {rows}x{cols} pixels x {frames} frame(s) x {spp} sample(s) = {declared}, "
            f"over max_pixels={max_pixels}; refusing before allocation",
            path=path,
        )
    if photometric not in _GRAYSCALE or spp != 1:
        raise UnsupportedImageError(
            f"{path}: PhotometricInterpretation {photometric} with {spp} sample(s) per pixel is not a "
            "grayscale radiograph; dicomxray renders MONOCHROME1/MONOCHROME2 only",
            path=path,
        )
    if bits_allocated not in (8, 16, 32) or not 1 <= bits_stored <= bits_allocated:
        raise UnsupportedImageError(
            f"{path}: BitsAllocated={bits_allocated}, BitsStored={bits_stored} is not supported",
            path=path,
        )
    if pixel_rep not in (0, 1):
        raise UnsupportedImageError(f"{path}: PixelRepresentation={pixel_rep} is not 0 or 1", path=path)
    if tsyntax.is_transfer_syntax and tsyntax.is_encapsulated != encapsulated:
        raise MissingPixelDataError(
            f"{path}: transfer syntax {tsyntax} says {'encapsulated' if tsyntax.is_encapsulated else 'native'} "
            f"Pixel Data but the element is {'encapsulated' if encapsulated else 'native'}",
            path=path,
        )
    return Header(
        path=path,
        ds=ds,
        pixel_data=pixel_data,
        transfer_syntax=tsyntax,
        rows=rows,
        columns=cols,
        frames=frames,
        samples_per_pixel=spp,
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        pixel_representation=pixel_rep,
        photometric=photometric,
        identity=identity,
    )


# --------------------------------------------------------------------------
# Display tags: the Modality LUT, VOI and Presentation LUT modules as plain values.


@dataclass(frozen=True)
class Lut:
    """A LUT from a Modality or VOI LUT Sequence item (PS3.3 C.11.1, C.11.2).

    ``data[i]`` is the output for input ``first_mapped + i``; inputs below or
    above the table take its first or last entry.
    """

    first_mapped: int
    data: object  # np.ndarray of the LUT entries
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
    import numpy as np

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


def display_tags(header: Header, frame: int = 0) -> DisplayTags:
    """Read the Modality LUT, VOI LUT and Presentation LUT modules of ``header`` for ``frame``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tags, dropped = _display_tags(header, frame)
    except DicomXrayError:
        raise
    except _MALFORMED as exc:
        raise UnsupportedImageError(f"{header.path}: malformed display tags ({type(exc).__name__}: {exc})",
                                    path=header.path) from None
    for center, width in dropped:
        warnings.warn(
            f"{header.path}: Window Center/Width {center:g}/{width:g} is invalid for VOI LUT Function "
            f"{tags.voi_function} (width must be {'>= 1' if tags.voi_function == 'LINEAR' else '> 0'}); "
            + ("using the next window" if tags.windows else "no window applied"),
            DicomXrayWarning, stacklevel=2,
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


def _display_tags(header: Header, frame: int) -> tuple[DisplayTags, list[tuple[float, float]]]:
    ds, path = header.ds, header.path
    little = header.transfer_syntax != ExplicitVRBigEndian
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
