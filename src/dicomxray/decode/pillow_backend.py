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

from ._frames import encapsulated_frame
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
    with Image.open(io.BytesIO(data), formats=["JPEG2000"]) as im:
        levels = _resolution_levels(data)
        r = min(reduce, levels)
        im.reduce = r
        im.load()
        mode = im.mode
        if mode == "I;16":
            arr = np.frombuffer(im.tobytes(), dtype="<u2").reshape(im.height, im.width)
            precision = _precision(data)
            if 8 < precision < 16:  # Pillow scales samples up to 16 bits by a left shift
                arr = arr >> (16 - precision)
        elif mode in ("L", "I", "I;16B"):
            arr = np.asarray(im)
        else:
            raise ValueError(f"unexpected JPEG 2000 image mode {mode!r}")
    if header.pixel_representation == 1 and arr.dtype == np.int32:
        arr = arr.astype(np.int16)
    return arr, r


def _precision(codestream: bytes) -> int:
    """Bit depth of the first component from the SIZ marker (ISO 15444-1 A.5.1)."""
    i = codestream.find(b"\xff\x51")
    if i < 0 or i + 40 >= len(codestream):
        return 16
    return (codestream[i + 40] & 0x7F) + 1


def _resolution_levels(codestream: bytes) -> int:
    """Number of decomposition levels in the COD marker (the most we may discard)."""
    i = codestream.find(b"\xff\x52")  # COD
    if i < 0 or i + 10 >= len(codestream):
        return 0
    # COD: marker(2) Lcod(2) Scod(1) SGcod(4) then SPcod: decomposition levels (1)
    return int(codestream[i + 9])
