"""Reading the tags the pipeline needs, with guards, before any pixel is decoded.

The file's bytes come from one consistent read (:mod:`dicomxray.io.source`) and
are parsed from memory.  Guards run before any pixel buffer is allocated: a missing Pixel Data
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
from typing import Literal

import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.uid import UID

from ..config import DEFAULT_MAX_PIXELS
from ..errors import (
    CorruptPixelDataError,
    DicomXrayError,
    FrameIndexError,
    MissingPixelDataError,
    NotDicomError,
    UnsupportedImageError,
)
from ..io.source import FileIdentity, Source, read_source
from ..io.translate import unreadable_dataset
from .display import MALFORMED
from .elements import LONG_VRS, check_bounds
from .format import PixelFormat
from .refusal import pixel_tags_refusal
from .sniff import SNIFF_BYTES, is_dicom
from .syntaxes import DEFLATED, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, NATIVE

__all__ = ["max_file_bytes", "Header", "parse_dataset", "read_header"]

#: Bytes a Pixel Data element may exceed its declared need by before we call it suspicious.
_MAX_FILE_OVERHEAD = 64 * 1024 * 1024


@dataclass(frozen=True)
class Header:
    """The pixel-describing tags of one file, its dataset and its raw Pixel Data.

    Decoding ``pixel_data`` is the job of :mod:`dicomxray.pixels.decode`.
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
            except MALFORMED:  # a mangled VR: metadata only, the pixels are still right
                return ""

    @property
    def frame_pixels(self) -> int:
        return self.rows * self.columns * self.samples_per_pixel

    @property
    def encapsulated(self) -> bool:
        return self.transfer_syntax not in NATIVE

    def pixel_format(self) -> PixelFormat:
        """What a decoder needs to know besides the bytes."""
        return PixelFormat(self.rows, self.columns, self.samples_per_pixel, self.bits_allocated, self.bits_stored,
                           self.signed, str(self.transfer_syntax), self.path)

    def frame_bytes(self, frame: int) -> bytes | memoryview:
        """The bytes of ``frame``: its codestream (PS3.5 A.4) or its slice of native Pixel Data (zero-copy)."""
        if frame >= self.frames:
            raise FrameIndexError(f"{self.path}: frame {frame} requested but the file has {self.frames} frame(s)",
                                 path=self.path)
        if self.encapsulated:
            try:
                return bytes(get_frame(bytes(self.pixel_data), frame, number_of_frames=self.frames))
            except Exception as exc:  # pydicom raises ValueError/KeyError/struct.error on broken items
                raise CorruptPixelDataError(
                    f"{self.path}: encapsulated Pixel Data is broken, cannot find frame {frame} ({exc})", path=self.path
                ) from None
        size = self.frame_pixels * self.bits_allocated // 8
        start = frame * size
        if len(self.pixel_data) < start + size:
            raise CorruptPixelDataError(
                f"{self.path}: Pixel Data is truncated: frame {frame} needs bytes {start}..{start + size}, "
                f"the element holds {len(self.pixel_data)}", path=self.path)
        return self.pixel_data[start : start + size]


def _fallback_syntax(ds: Dataset) -> UID:
    implicit, little = ds.original_encoding
    if implicit:
        return UID(IMPLICIT_LE)
    return UID(EXPLICIT_LE if little else EXPLICIT_BE)


def _int_tag(ds: Dataset, name: str, path: str, default: int | None = None) -> int:
    value = ds.get(name, default)
    if value is None or value == "":
        raise MissingPixelDataError(f"{path}: required tag {name} is missing", path=path)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MissingPixelDataError(f"{path}: tag {name} has a non-integer value {value!r}", path=path) from None


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
    elif bytes(data[offset + 4 : offset + 6]) in LONG_VRS:
        length, start = int.from_bytes(data[offset + 8 : offset + 12], order), offset + 12
    else:
        length, start = int.from_bytes(data[offset + 6 : offset + 8], order), offset + 8
    view = memoryview(data)
    if length == 0xFFFFFFFF:
        return view[start:], True
    return view[start : start + length], False


_DEFLATED_UID = DEFLATED.encode()


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
    if meta.get("TransferSyntaxUID") != DEFLATED:
        return None
    body = zlib.decompress(data[fp.tell() :], -zlib.MAX_WBITS)
    check_bounds(body)
    buffer = io.BytesIO(body)
    ds = pydicom.dcmread(buffer, force=True, stop_before_pixels=True)
    ds.file_meta = meta
    return ds, _pixel_element(body, buffer.tell(), implicit=False, little=True)


def parse_dataset(data: bytes, path: str) -> tuple[Dataset, memoryview | None, bool]:
    """Parse DICOM bytes (preamble optional); or raise ``NotDicomError``.

    Returns the dataset without Pixel Data, a zero-copy view of the Pixel
    Data value (``None`` when absent) and whether it has undefined length
    (encapsulated): the value is never copied.
    """
    if not is_dicom(data[:SNIFF_BYTES], len(data)):
        raise NotDicomError(f"{path}: not a DICOM file (no DICM magic at byte 128, no DICOM tag at the start)", path=path)
    try:
        check_bounds(data)  # a Deflated body is checked once inflated, in _parse_deflated
    except NotDicomError as exc:
        raise NotDicomError(f"{path}: {exc}", path=path) from None
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
        except NotDicomError as exc:  # check_bounds refused the inflated body of a Deflated file
            raise NotDicomError(f"{path}: {exc}", path=path) from None
        except Exception as exc:  # pydicom raises many kinds on garbage: the one translation names the file
            raise unreadable_dataset(exc, path) from None
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


def max_file_bytes(max_pixels: int) -> int:
    """The largest file an image of ``max_pixels`` 32-bit samples can need (plus generous headers)."""
    return max_pixels * 4 + _MAX_FILE_OVERHEAD


def read_header(source: str | os.PathLike[str] | Source, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Header:
    """Read ``source`` (a path, or bytes already read) and validate everything needed to decode its pixels.

    Raises
    ------
    SourceFileNotFoundError, SourceChangedError, NotDicomError, MissingPixelDataError,
    UnsupportedImageError, ImageTooLargeError
    """
    if not isinstance(source, Source):
        source = read_source(source, max_bytes=max_file_bytes(max_pixels))
    p = source.path
    ds, pixel_data, encapsulated = parse_dataset(source.data, p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _validate(ds, pixel_data, encapsulated, p, identity=source.identity, max_pixels=max_pixels)
    except DicomXrayError:
        raise
    except MALFORMED as exc:  # pydicom converts values lazily: a mangled tag fails here, not while parsing
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

    refusal = pixel_tags_refusal(rows=rows, columns=cols, frames=frames, samples_per_pixel=spp,
                                 bits_allocated=bits_allocated, bits_stored=bits_stored, pixel_representation=pixel_rep,
                                 photometric=photometric, transfer_syntax=tsyntax, encapsulated=encapsulated,
                                 max_pixels=max_pixels)
    if refusal is not None:
        raise refusal.exception(path)
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
