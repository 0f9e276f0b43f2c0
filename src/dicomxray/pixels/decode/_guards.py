"""Codestream guards, run once for every backend before any C decoder sees the bytes.

Each guard exists because a decoder misbehaved on hostile input (found by
fuzzing, ``benchmarks/stress.py``): OpenJPH spent 90 s on an HTJ2K stream whose
SIZ marker declared a huge image, GDCM can ``abort()`` on JPEG-LS data whose
size disagrees with Rows/Columns, CharLS spins for seconds on JPEG-LS without
EOI, and imagecodecs' RLE decoder segfaults on segment offsets past the frame.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ...dicom.syntaxes import HTJ2K, J2K, JPEG, JPEG_LS, RLE
from ...errors import CorruptPixelDataError

if TYPE_CHECKING:
    from ...dicom.format import PixelFormat

__all__ = ["checked_codestream", "resolution_levels", "unwrap_jp2"]

# SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC); F7 is JPEG-LS SOF55.
_SOF_MARKERS = frozenset(set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}) | {0xF7}


def checked_codestream(data: bytes | memoryview, fmt: PixelFormat, frame: int) -> bytes:
    """The frame's codestream, unwrapped from a JP2 file if need be; or ``CorruptPixelDataError``."""
    data = bytes(data)
    syntax = fmt.transfer_syntax
    if syntax in J2K | HTJ2K and data[4:8] == b"jP  ":
        data = unwrap_jp2(data, fmt.path)
    if syntax in JPEG_LS and b"\xff\xd9" not in data[-8:]:  # EOI, maybe padded
        problem: str | None = "JPEG-LS codestream is truncated (no EOI marker)"
    elif syntax in J2K | HTJ2K:
        problem = _j2k_problem(fmt, data)
    elif syntax in JPEG | JPEG_LS:
        problem = _jpeg_problem(fmt, data)
    elif syntax in RLE:
        problem = _rle_problem(data, fmt.samples_per_pixel * fmt.bits_allocated // 8)
    else:
        problem = None
    if problem:
        raise CorruptPixelDataError(f"{fmt.path}: frame {frame}: {problem}", path=fmt.path)
    return data


def _j2k_problem(header: PixelFormat, data: bytes) -> str | None:
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


def _jpeg_problem(header: PixelFormat, data: bytes) -> str | None:
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


def _rle_problem(data: bytes, segments: int) -> str | None:
    """The 64-byte RLE header (PS3.5 G.5): segment count the pixel format needs, first offset 64,
    offsets increasing and inside the frame."""
    if len(data) < 64:
        return f"RLE frame of {len(data)} bytes is shorter than its 64-byte header"
    count, *offsets = struct.unpack("<16I", data[:64])
    if count != segments:
        return f"RLE header declares {count} segments, the pixel format needs {segments}"
    used = offsets[:count]
    if used[0] != 64 or any(b <= a for a, b in zip(used, used[1:], strict=False)) or used[-1] >= len(data):
        return f"RLE segment offsets {used} are invalid for a {len(data)}-byte frame"
    return None
