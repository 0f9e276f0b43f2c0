"""Native (uncompressed) Pixel Data: implicit/explicit little endian, big endian, deflated.

pydicom inflates deflated datasets while parsing, so all four are raw samples.
Excess bytes after the last frame (common in the SIIM data) are ignored;
missing bytes raise :class:`CorruptPixelDataError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydicom import uid

from ..errors import CorruptPixelDataError
from ._syntaxes import NATIVE

if TYPE_CHECKING:
    from ..header import Header

NAME = "numpy"
PACKAGES: tuple[str, ...] = ()
SYNTAXES = NATIVE


def is_available(syntax: str | None = None) -> bool:
    return True


def missing_packages(syntax: str | None = None) -> list[str]:
    return []


def decode(header: Header, frame: int, reduce: int = 0) -> tuple[np.ndarray, int]:
    """Return frame ``frame`` as raw unsigned samples in native byte order."""
    nbytes = header.bits_allocated // 8
    frame_len = header.frame_pixels * nbytes
    data = header.pixel_data
    start = frame * frame_len
    if len(data) < start + frame_len:
        raise CorruptPixelDataError(
            f"{header.path}: Pixel Data is truncated: frame {frame} needs bytes {start}..{start + frame_len}, "
            f"the element holds {len(data)}",
            path=header.path,
        )
    order = ">" if header.transfer_syntax == uid.ExplicitVRBigEndian else "<"
    dtype = np.dtype(f"{order}u{nbytes}")
    arr = np.frombuffer(data, dtype=dtype, count=header.frame_pixels, offset=start)
    if order == ">" and nbytes > 1:
        arr = arr.astype(dtype.newbyteorder("="))
    return arr.reshape(header.rows, header.columns), 0
