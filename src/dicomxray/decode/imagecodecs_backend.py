"""imagecodecs: libjpeg-turbo, CharLS, OpenJPEG, OpenJPH and a DICOM RLE decoder in one wheel.

Measured fastest per syntax on this 2-core machine (see ARCHITECTURE.md):
JPEG Lossless via libjpeg-turbo ~4x pydicom's default; JPEG-LS via CharLS
~3.7x pylibjpeg; HTJ2K via OpenJPH, which can also skip resolution levels.
"""

from __future__ import annotations

import struct
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ._frames import encapsulated_frame, resolution_levels
from ._syntaxes import ENCAPSULATED, HTJ2K, J2K, JPEG, JPEG_LS, JPEG_XL, RLE

if TYPE_CHECKING:
    from ..header import Header

NAME = "imagecodecs"
PACKAGES = ("imagecodecs",)
SYNTAXES = ENCAPSULATED

# The codec inside imagecodecs that each family needs (builds can lack some).
_CODEC: dict[str, str] = {**dict.fromkeys(JPEG, "JPEG8"), **dict.fromkeys(JPEG_LS, "JPEGLS"),
                          **dict.fromkeys(J2K, "JPEG2K"), **dict.fromkeys(HTJ2K, "HTJ2K"), **dict.fromkeys(RLE, "DICOMRLE"),
                          **dict.fromkeys(JPEG_XL, "JPEGXL")}


@cache
def _module() -> Any:
    try:
        import imagecodecs
    except ImportError:
        return None
    return imagecodecs


def is_available(syntax: str | None = None) -> bool:
    mod = _module()
    if mod is None:
        return False
    if syntax is None:
        return True
    codec = getattr(mod, _CODEC.get(syntax, ""), None)
    return bool(codec is not None and codec.available)


def missing_packages(syntax: str | None = None) -> list[str]:
    return [] if is_available(syntax) else list(PACKAGES)


def decode(header: Header, frame: int, reduce: int = 0) -> tuple[np.ndarray, int]:
    """Decode one frame; only HTJ2K honours ``reduce`` here (clamped to its decomposition levels)."""
    ic = _module()
    data = encapsulated_frame(header, frame)
    syntax = header.transfer_syntax
    if syntax in JPEG:
        # libjpeg-turbo only: imagecodecs' liblj92 (ljpeg_decode) segfaults on hostile lossless streams
        # (found by fuzzing), so a stream libjpeg-turbo refuses goes to the next backend instead.
        return ic.jpeg8_decode(data), 0
    if syntax in JPEG_LS:
        return ic.jpegls_decode(data), 0
    if syntax in J2K:
        return _squeeze(ic.jpeg2k_decode(data)), 0
    if syntax in HTJ2K:
        r = min(reduce, resolution_levels(data))  # OpenJPH fails past the codestream's decomposition levels
        return _squeeze(ic.htj2k_decode(data, skipres=r or None)), r
    if syntax in JPEG_XL:
        return _squeeze(ic.jpegxl_decode(data)), 0
    # RLE Lossless: imagecodecs wants a mutable buffer and returns bytes.
    nbytes = header.bits_allocated // 8
    check_rle_header(data, nbytes * header.samples_per_pixel)
    raw = ic.dicomrle_decode(bytearray(data), f"<u{nbytes}")
    arr = np.frombuffer(raw, dtype=f"<u{nbytes}")
    if arr.size < header.frame_pixels:
        raise ValueError(f"RLE frame decoded to {arr.size} samples, expected {header.frame_pixels}")
    return arr[: header.frame_pixels].reshape(header.rows, header.columns), 0


def check_rle_header(data: bytes, segments: int) -> None:
    """Validate the 64-byte RLE header (PS3.5 G.5) before any C code reads the segments.

    ``imagecodecs.dicomrle_decode`` trusts the segment offsets and segfaults on
    one that points past the data (found by fuzzing), so: the segment count must
    be what the pixel format needs, the first offset 64, offsets increasing and
    inside the frame.
    """
    if len(data) < 64:
        raise ValueError(f"RLE frame of {len(data)} bytes is shorter than its 64-byte header")
    count, *offsets = struct.unpack("<16I", data[:64])
    if count != segments:
        raise ValueError(f"RLE header declares {count} segments, the pixel format needs {segments}")
    used = offsets[:count]
    if used[0] != 64 or any(b <= a for a, b in zip(used, used[1:], strict=False)) or used[-1] >= len(data):
        raise ValueError(f"RLE segment offsets {used} are invalid for a {len(data)}-byte frame")


def _squeeze(arr: np.ndarray) -> np.ndarray:
    return arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr
