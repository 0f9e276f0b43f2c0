"""Reading the header of one file for the index: tags only, never a pixel.

pydicom's ``dcmread(stop_before_pixels=True)`` builds a whole ``Dataset`` (a
raw element per tag, the file meta converted, the character set resolved);
the index needs about twenty values and the place of Pixel Data, so the
header is walked with :mod:`dicomxray.dicom.elements` and only those values are decoded.
What the walk cannot follow (a wrong VR in the middle of the data set, say)
goes to pydicom, which knows more heuristics; only when both fail is the row
an error row.

Every string is kept as pydicom would show it (trailing spaces and NULs
stripped, multiple values joined by a backslash), so a PatientID hashed here
matches one read with pydicom.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import struct
import warnings
import zlib
from typing import Any, BinaryIO, Literal, Protocol

from ..dicom.elements import (
    MAX_SEQUENCE_ITEMS,
    OPEN_FLAGS,
    PIXEL_DATA,
    PREFIX,
    Buffer,
    Malformed,
    Truncated,
    check_bounds,
    check_item_tags,
    dataset_start,
    guess_encoding,
    little_from_group,
    pixel_location,
    pread,
    read_meta,
    walk,
)
from ..dicom.sniff import SNIFF_BYTES, is_dicom
from ..dicom.syntaxes import DEFLATED, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, NATIVE
from ..errors import (
    CorruptPixelDataError,
    MissingPixelDataError,
    NotDicomError,
)
from ..io.identity import FileIdentity
from ..io.translate import translate, unreadable_dataset
from .table import identity_values
from .truth import DISPLAY_TAGS, header_dataset, header_refusal, walked_display

__all__ = ["PATIENT_TAGS", "TAGS", "Reader", "scan_file"]

_VOI_LUT_SEQUENCE = 0x00283010
_CHARSET = 0x00080005

#: Top-level tags read into a row: tag -> (column, kind).  ``us``: unsigned short;
#: ``is``: integer string; ``str``: text; ``text``: text in the Specific Character Set.
TAGS: dict[int, tuple[str, str]] = {
    0x00080016: ("SOPClassUID", "str"),
    0x00080018: ("SOPInstanceUID", "str"),
    0x00080060: ("Modality", "str"),
    0x00080070: ("Manufacturer", "text"),
    0x00081090: ("ManufacturerModelName", "text"),
    0x00180015: ("BodyPartExamined", "str"),
    0x00185101: ("ViewPosition", "str"),
    0x0020000D: ("StudyInstanceUID", "str"),
    0x0020000E: ("SeriesInstanceUID", "str"),
    0x00200011: ("SeriesNumber", "is"),
    0x00200013: ("InstanceNumber", "is"),
    0x00200062: ("ImageLaterality", "str"),
    0x00280002: ("SamplesPerPixel", "us"),
    0x00280004: ("PhotometricInterpretation", "str"),
    0x00280008: ("NumberOfFrames", "is"),
    0x00280010: ("Rows", "us"),
    0x00280011: ("Columns", "us"),
    0x00280100: ("BitsAllocated", "us"),
    0x00280101: ("BitsStored", "us"),
    0x00280103: ("PixelRepresentation", "us"),
    0x00281050: ("has_window", "present"),
}

#: Tags written only with ``include_patient=True``: those PS3.15's Basic Application
#: Level Confidentiality Profile removes or blanks (and idc-index carries).
PATIENT_TAGS: dict[int, tuple[str, str]] = {
    0x00080020: ("StudyDate", "str"),
    0x00080021: ("SeriesDate", "str"),
    0x00081030: ("StudyDescription", "text"),
    0x0008103E: ("SeriesDescription", "text"),
    0x00100020: ("PatientID", "text"),
    0x00100040: ("PatientSex", "str"),
    0x00101010: ("PatientAge", "str"),
}

_WANTED: dict[int, tuple[str, str]] = {**TAGS, **PATIENT_TAGS, **DISPLAY_TAGS, _CHARSET: ("_charset", "str"),
                                       _VOI_LUT_SEQUENCE: ("has_voi_lut", "seq")}
_ROW_COLUMNS = tuple(column for column, _ in TAGS.values())
_ROW_COLUMNS_PATIENT = _ROW_COLUMNS + tuple(column for column, _ in PATIENT_TAGS.values())


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").rstrip(" \x00")


def _decode(found: dict[int, Any], want_patient: bool, order: Literal["little", "big"]) -> dict[str, Any]:
    """Turn the raw values the walk kept into row values."""
    charset_raw = found.get(_CHARSET)
    encodings: list[str] | None = None
    if charset_raw:
        from pydicom.charset import convert_encodings

        names = [s.strip() for s in _text(charset_raw).split("\\")]
        if any(n not in ("", "ISO_IR 6", "ISO_IR 100") for n in names):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    encodings = convert_encodings(names)
                except (LookupError, ValueError):  # an unknown character set: Latin-1, as pydicom's default
                    encodings = None
    row = dict.fromkeys(_ROW_COLUMNS_PATIENT if want_patient else _ROW_COLUMNS)
    row["has_window"] = False
    for tag, raw in found.items():
        spec = _WANTED.get(tag)
        if spec is None or spec[0] not in row or spec[1] == "seq":
            continue
        column, kind = spec
        if kind == "present":
            row[column] = bool(raw.strip(b" \x00\\"))
        elif not raw:
            continue
        elif kind == "us":
            row[column] = int.from_bytes(raw[:2], order) if len(raw) >= 2 else None
        elif kind == "is":
            row[column] = _int_string(_text(raw))
        elif kind == "text" and encodings is not None:
            from pydicom.charset import decode_bytes

            row[column] = decode_bytes(raw, encodings, {0x5C}).rstrip(" \x00") or None
        else:
            row[column] = _text(raw) or None
    row["has_voi_lut"] = bool(found.get(_VOI_LUT_SEQUENCE))
    return row


def _int_string(value: str) -> int | None:
    try:
        return int(value.split("\\")[0].strip())
    except ValueError:
        return None


def _check_native_length(row: dict[str, Any], length: int) -> None:
    """The tags a decoder needs are there, and native Pixel Data holds what they declare (PS3.5 8.1.1)."""
    for name in ("Rows", "Columns", "BitsAllocated"):
        if not row.get(name):
            raise MissingPixelDataError(f"required tag {name} is missing")
    if length < 0:
        return
    samples = row.get("SamplesPerPixel") or 1
    if row.get("PhotometricInterpretation") == "YBR_FULL_422":
        samples = 2  # two chroma samples shared by each pair of pixels (PS3.3 C.7.6.3.1.2)
    pixels = row["Rows"] * row["Columns"] * samples * (row.get("NumberOfFrames") or 1)
    need = -(-pixels * row["BitsAllocated"] // 8)
    if length < need:
        raise CorruptPixelDataError(f"Pixel Data holds {length} bytes, the header declares {need}")


class Reader(Protocol):
    """Where a header walk gets its bytes: an open file, or an object read by ranges."""

    def pread(self, n: int, pos: int) -> bytes: ...

    def buffer(self, size: int, pos: int = 0) -> Buffer: ...

    def open(self) -> BinaryIO: ...


class _FileReader:
    """An open local file, read with ``pread``."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def pread(self, n: int, pos: int) -> bytes:
        return pread(self.fd, n, pos)

    def buffer(self, size: int, pos: int = 0) -> Buffer:
        return Buffer(self.fd, size, pread(self.fd, PREFIX, pos), pos)

    def open(self) -> BinaryIO:
        return os.fdopen(os.dup(self.fd), "rb")


def _parse(reader: Reader, size: int, want_patient: bool) -> dict[str, Any]:
    """Walk one open file; raise ``Malformed``/``Truncated``/a DicomXrayError."""
    buf = reader.buffer(size)
    head = buf.data
    if not is_dicom(head[:SNIFF_BYTES], size):
        raise NotDicomError("not a DICOM file (no DICM magic at byte 128, no DICOM tag at the start)")
    pos = dataset_start(head)
    meta, pos = read_meta(buf, pos)
    syntax = _text(meta[0x00020010]) if meta.get(0x00020010) else None
    first = buf.read(pos, min(8, buf.size - pos))
    implicit, little = syntax == IMPLICIT_LE, syntax != EXPLICIT_BE
    if syntax is None:  # no (0002,0010): the byte order from the first group number (a small one)
        little = little_from_group(first)
    if syntax == DEFLATED:
        try:
            body = zlib.decompress(reader.pread(size - pos, pos), -zlib.MAX_WBITS)
        except zlib.error:
            raise NotDicomError("the Deflated data set does not inflate") from None
        buf, pos, implicit, little = Buffer(None, len(body), body), 0, False, True
        first = body[:8]
    implicit, little = guess_encoding(first, implicit, little)
    if syntax is None:
        syntax = IMPLICIT_LE if implicit else EXPLICIT_LE if little else EXPLICIT_BE
    found: dict[int, Any] = {}
    end = walk(buf, pos, implicit, little, found, _WANTED)
    # read_xray's item-tag bound; the bytes past the first read hold at most one item per 8, so only a header
    # that could be over the limit is read again
    known = (buf.data if syntax == DEFLATED else head)[:end]  # an inflated body is all in memory
    check_item_tags(known if (end - len(known)) // 8 <= MAX_SEQUENCE_ITEMS // 2 else buf.read(0, end))
    row = _decode(found, want_patient, "little" if little else "big")
    row["TransferSyntaxUID"] = syntax
    offset, length = pixel_location(buf, found, implicit, little)
    _check_native_length(row, length if syntax in NATIVE else -1)
    if syntax == DEFLATED:  # the value lives in the inflated stream, not in the file
        offset = -1
    row["pixel_data_offset"], row["pixel_data_length"] = offset, length
    display = walked_display(found, little)  # None: a display sequence, read with pydicom
    row["undecodable_reason"] = header_refusal(row, header_dataset(reader) if display is None else display)
    return row


def _parse_with_pydicom(reader: Reader, size: int, want_patient: bool) -> dict[str, Any]:
    """The fallback for what the walk refused: pydicom's own reader and heuristics."""
    import pydicom
    from pydicom.multival import MultiValue

    with reader.open() as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_bounds(fh.read())  # what the walk could not follow may still hold millions of items
        fh.seek(0)
        try:
            ds = pydicom.dcmread(fh, force=True, stop_before_pixels=True)
            tag_pos = fh.tell()
        except Exception as exc:  # pydicom raises many kinds on garbage: the one translation (the row names the file)
            raise unreadable_dataset(exc) from None
    if len(ds) == 0:
        raise NotDicomError("not a DICOM file (no data elements)")
    implicit, little = bool(ds.original_encoding[0]), ds.original_encoding[1] is not False
    row: dict[str, Any] = {}
    for table in (TAGS, PATIENT_TAGS) if want_patient else (TAGS,):
        for tag, (column, kind) in table.items():
            row[column] = _dataset_value(ds, tag, kind, MultiValue)
    row["has_voi_lut"] = bool(_dataset_value(ds, _VOI_LUT_SEQUENCE, "present", MultiValue))
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    syntax = syntax or (IMPLICIT_LE if implicit else EXPLICIT_LE if little else EXPLICIT_BE)
    row["TransferSyntaxUID"] = syntax
    if syntax == DEFLATED:  # pydicom read an inflated copy: no file offset to give
        _check_native_length(row, -1)
        row["pixel_data_offset"] = row["pixel_data_length"] = -1
        row["undecodable_reason"] = header_refusal(row, ds)
        return row
    buf = reader.buffer(size, tag_pos)
    found: dict[int, Any] = {}
    head = buf.data[:8]
    if len(head) == 8 and head[:4] == (b"\xe0\x7f\x10\x00" if little else b"\x7f\xe0\x00\x10"):
        found[PIXEL_DATA] = (tag_pos, None if implicit else head[4:6])
    offset, length = pixel_location(buf, found, implicit, little)
    _check_native_length(row, length if syntax in NATIVE else -1)
    row["pixel_data_offset"], row["pixel_data_length"] = offset, length
    row["undecodable_reason"] = header_refusal(row, ds)
    return row


def _dataset_value(ds: Any, tag: int, kind: str, multi: type[Any]) -> Any:
    value: Any
    try:
        elem = ds.get(tag)
        value = None if elem is None else elem.value
    except Exception:  # a mangled value is metadata only: the row keeps going without it
        return None
    if kind == "present":
        return value is not None and value != "" and value != []
    if value is None or value == "":
        return None
    if isinstance(value, multi):
        value = value[0] if kind in ("us", "is") else "\\".join(str(v) for v in value)
    if kind in ("us", "is"):
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    return str(value).rstrip(" \x00") or None


def patient_hash(patient_id: str | None, key: bytes) -> str | None:
    """HMAC-SHA256 of PatientID (UTF-8) keyed with the index's salt, hex; ``None`` without PatientID."""
    if not patient_id:
        return None
    return hmac.new(key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()


def _read_row(reader: Reader, size: int) -> dict[str, Any]:
    """The walk first; pydicom for what it refuses; a truncated header stays truncated."""
    try:
        return _parse(reader, size, True)
    except (Malformed, Truncated, struct.error, KeyError, IndexError) as exc:
        first: Exception = exc
    try:
        return _parse_with_pydicom(reader, size, True)
    except (NotDicomError, MissingPixelDataError, Truncated, Malformed, struct.error):
        if isinstance(first, Truncated):
            raise NotDicomError(f"the file ends inside the DICOM header (at byte {first.args[0]}; truncated)") from None
        raise


def scan_file(path: str, *, key: bytes, include_patient: bool = False) -> dict[str, Any]:
    """One index row of ``path`` (identity, tags, Pixel Data place), or its error row.

    Never raises for a bad file: the row then holds ``error_type`` and ``error``.
    """
    row: dict[str, Any] = identity_values(None)
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as exc:  # vanished after discovery, unreadable...: the one map to the error tree
        return _error_row(row, translate(exc, path))
    try:
        st = os.fstat(fd)  # the identity of the bytes read below, not of whatever the name points at later
        row.update(identity_values(FileIdentity.of_stat(path, st)))
        if not stat.S_ISREG(st.st_mode):
            raise NotDicomError("not a regular file")
        row.update(_read_row(_FileReader(fd), st.st_size))
    except Exception as exc:  # a bad file is a row with its error, never a crash of the whole index
        return _error_row(row, exc)
    finally:
        os.close(fd)
    return _finish(row, key, include_patient)


def _finish(row: dict[str, Any], key: bytes, include_patient: bool) -> dict[str, Any]:
    """Hash PatientID and drop the patient columns unless asked for."""
    patient_id = row.pop("PatientID", None)
    row["patient_hash"] = patient_hash(patient_id, key)
    if include_patient:
        row["PatientID"] = patient_id
    else:
        for column, _ in PATIENT_TAGS.values():
            row.pop(column, None)
    row["error_type"] = row["error"] = None
    return row


def _error_row(row: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    row.update(error_type=type(exc).__name__, error=str(exc), pixel_data_offset=-1, pixel_data_length=-1)
    return row
