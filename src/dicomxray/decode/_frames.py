"""Getting one frame's bytes out of Pixel Data (shared by the backends)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from pydicom.encaps import get_frame

from ..errors import CorruptPixelDataError
from ._syntaxes import HTJ2K, J2K, JPEG, JPEG_LS

if TYPE_CHECKING:
    from ..header import Header


# SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC); F7 is JPEG-LS SOF55.
_SOF_MARKERS = frozenset(set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}) | {0xF7}


def encapsulated_frame(header: Header, frame: int) -> bytes:
    """Return the codestream of ``frame`` from encapsulated Pixel Data (PS3.5 A.4).

    A JPEG-LS codestream without its EOI marker is refused here: CharLS spends
    seconds on some truncated streams before failing (found by fuzzing), and a
    truncated stream cannot decode correctly anyway.
    """
    try:
        data = bytes(get_frame(bytes(header.pixel_data), frame, number_of_frames=header.frames))
    except Exception as exc:  # pydicom raises ValueError/KeyError/struct.error on broken items
        raise CorruptPixelDataError(
            f"{header.path}: encapsulated Pixel Data is broken, cannot find frame {frame} ({exc})",
            path=header.path,
        ) from None
    if header.transfer_syntax in J2K | HTJ2K and data[4:8] == b"jP  ":
        data = unwrap_jp2(data, header.path)
    if header.transfer_syntax in JPEG_LS and b"\xff\xd9" not in data[-8:]:  # EOI, maybe padded
        raise CorruptPixelDataError(
            f"{header.path}: JPEG-LS codestream of frame {frame} is truncated (no EOI marker)", path=header.path
        )
    problem = codestream_problem(header, data)
    if problem:
        raise CorruptPixelDataError(f"{header.path}: frame {frame}: {problem}", path=header.path)
    return data


def codestream_problem(header: Header, data: bytes) -> str | None:
    """Why the codestream's own image size disagrees with the header, or ``None``.

    Checked before any C decoder runs: OpenJPH spent 90 s on a fuzzed HTJ2K
    stream whose SIZ marker declared a huge image, and GDCM is known to
    ``abort()`` on JPEG-LS data whose size disagrees with Rows/Columns.
    """
    syntax = header.transfer_syntax
    if syntax in J2K | HTJ2K:
        return _j2k_problem(header, data)
    if syntax in JPEG | JPEG_LS:
        return _jpeg_problem(header, data)
    return None


def _j2k_problem(header: Header, data: bytes) -> str | None:
    # ISO 15444-1 A.5.1: SOC, then SIZ: Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz XTOsiz YTOsiz Csiz
    if len(data) < 42 or data[:4] != b"\xff\x4f\xff\x51":
        return "not a JPEG 2000 codestream (no SOC/SIZ at the start)"
    xsiz, ysiz, xo, yo, xt, yt, xto, yto = struct.unpack(">8I", data[8:40])
    (csiz,) = struct.unpack(">H", data[40:42])
    width, height = xsiz - xo, ysiz - yo
    if (height, width) != (header.rows, header.columns) or csiz != header.samples_per_pixel:
        return (f"JPEG 2000 codestream declares {height}x{width} with {csiz} component(s), "
                f"the header {header.rows}x{header.columns} with {header.samples_per_pixel}")
    if xt == 0 or yt == 0 or xto > xo or yto > yo:
        return "JPEG 2000 codestream has an invalid tile grid"
    return None


def _jpeg_problem(header: Header, data: bytes) -> str | None:
    # ITU T.81 B.2.2 / ISO 14495-1: SOFn (and SOF55 for JPEG-LS): Lf P Y X Nf
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return "JPEG codestream is malformed before its frame header"
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF_MARKERS:
            y, x = struct.unpack(">HH", data[i + 5 : i + 9])
            nf = data[i + 9]
            if x != header.columns or y not in (0, header.rows) or nf != header.samples_per_pixel:
                return (f"JPEG codestream declares {y}x{x} with {nf} component(s), "
                        f"the header {header.rows}x{header.columns} with {header.samples_per_pixel}")
            return None
        if length < 2:
            return "JPEG codestream has a marker segment of invalid length"
        i += 2 + length
    return "JPEG codestream has no frame header"


def unwrap_jp2(data: bytes, path: str) -> bytes:
    """The codestream inside a JP2 file (ISO 15444-1 Annex I): the contents of its ``jp2c`` box.

    DICOM wants a bare codestream, but some writers store the whole JP2 file.
    """
    i = 0
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        kind, header_len = data[i + 4 : i + 8], 8
        if length == 1 and i + 16 <= len(data):  # XLBox: a 64-bit length follows
            (length,) = struct.unpack(">Q", data[i + 8 : i + 16])
            header_len = 16
        end = len(data) if length == 0 else i + length
        if kind == b"jp2c":
            return data[i + header_len : end]
        if length and length < header_len:
            break
        i = end
    raise CorruptPixelDataError(f"{path}: JP2 file in Pixel Data holds no codestream (jp2c) box", path=path)


def resolution_levels(codestream: bytes) -> int:
    """Decomposition levels in the COD marker (ISO 15444-1 A.6.1): the most a decoder may discard."""
    i = codestream.find(b"\xff\x52")  # COD: marker(2) Lcod(2) Scod(1) SGcod(4), then SPcod: levels(1)
    if i < 0 or i + 10 >= len(codestream):
        return 0
    return int(codestream[i + 9])
