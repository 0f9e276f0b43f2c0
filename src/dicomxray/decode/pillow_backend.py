"""Pillow's JPEG 2000 plugin (OpenJPEG), used for reduced-resolution decoding.

JPEG 2000 stores an image as a pyramid of resolution levels; discarding the
top ``r`` levels (OpenJPEG's reduce factor) decodes a ``2**-r`` image for a
fraction of the cost.  That is how we beat the ~440 ms JPEG 2000 wall when the
output is much smaller than the source.
"""

from __future__ import annotations

import io
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ._frames import encapsulated_frame, resolution_levels
from ._syntaxes import J2K

if TYPE_CHECKING:
    from ..header import Header

NAME = "pillow"
PACKAGES = ("pillow",)
SYNTAXES = J2K


@cache
def _image_module() -> Any:
    try:
        from PIL import Image, features
    except ImportError:
        return None
    return Image if features.check("jpg_2000") else None


def is_available(syntax: str | None = None) -> bool:
    return _image_module() is not None


def missing_packages(syntax: str | None = None) -> list[str]:
    return [] if is_available(syntax) else list(PACKAGES)


def decode(header: Header, frame: int, reduce: int = 0) -> tuple[np.ndarray, int]:
    Image = _image_module()
    data = encapsulated_frame(header, frame)
    precision, signed = _precision(data)
    with Image.open(io.BytesIO(data), formats=["JPEG2000"]) as im:
        r = min(reduce, resolution_levels(data))
        im.reduce = r
        im.load()
        mode = im.mode
        if mode == "I;16":
            arr = np.frombuffer(im.tobytes(), dtype="<u2").reshape(im.height, im.width)
            if 8 < precision < 16:  # Pillow scales samples up to 16 bits by a left shift
                arr = arr >> (16 - precision)
        elif mode in ("L", "I", "I;16B"):
            arr = np.asarray(im)
        else:
            raise ValueError(f"unexpected JPEG 2000 image mode {mode!r}")
    if signed:  # Pillow returns signed components offset by 2**(precision - 1): remove it
        arr = (arr.astype(np.int32) - (1 << (precision - 1))).astype(np.int16 if precision <= 16 else np.int32)
    return arr, r


def _precision(codestream: bytes) -> tuple[int, bool]:
    """Bit depth and signedness of the first component from the SIZ marker (ISO 15444-1 A.5.1, Ssiz)."""
    i = codestream.find(b"\xff\x51")
    if i < 0 or i + 40 >= len(codestream):
        return 16, False
    ssiz = codestream[i + 40]
    return (ssiz & 0x7F) + 1, bool(ssiz & 0x80)
