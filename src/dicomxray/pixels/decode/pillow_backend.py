"""Pillow's JPEG 2000 plugin (OpenJPEG): the backend that can drop resolution levels of JPEG 2000.

JPEG 2000 stores an image as a pyramid of resolution levels; discarding the top
``r`` levels (OpenJPEG's reduce factor) decodes a ``2**-r`` image for a fraction
of the cost.  The pipeline asks for it only when the user opts in
(``DecodeConfig(reduced_resolution=True)``): a level is the wavelet low-pass band,
not a box average.
"""

from __future__ import annotations

import io
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ...dicom.syntaxes import J2K
from ...errors import DecoderUnavailableError
from ._guards import resolution_levels
from ._versions import dist_versions

if TYPE_CHECKING:
    from ...dicom.format import PixelFormat


@cache
def _image_module() -> Any:
    try:
        from PIL import Image, features
    except ImportError:
        return None
    return Image if features.check("jpg_2000") else None


class PillowBackend:
    name = "pillow"
    packages = ("pillow",)
    syntaxes = J2K
    #: None: Pillow's OpenJPEG takes threads only from the process-wide ``OPJ_NUM_THREADS`` (see ``_threads``).
    threaded: frozenset[str] = frozenset()

    def is_available(self, syntax: str) -> bool:
        return _image_module() is not None

    def missing_packages(self, syntax: str) -> list[str]:
        return [] if self.is_available(syntax) else list(self.packages)

    def versions(self) -> dict[str, str]:
        return dist_versions(self.packages)

    def max_reduce(self, fmt: PixelFormat, data: bytes | memoryview) -> int:
        return resolution_levels(bytes(data[:4096]))

    def decode(self, data: bytes | memoryview, fmt: PixelFormat, reduce: int, threads: int = 1) -> tuple[np.ndarray, int]:
        Image = _image_module()
        precision, signed = _precision(bytes(data[:4096]))
        with Image.open(io.BytesIO(data), formats=["JPEG2000"]) as im:
            im.reduce = reduce
            im.load()
            mode = im.mode
            if mode == "I;16":
                arr = np.frombuffer(im.tobytes(), dtype="<u2").reshape(im.height, im.width)
                if 8 < precision < 16:  # Pillow scales samples up to 16 bits by a left shift
                    arr = arr >> (16 - precision)
            elif mode in ("L", "I", "I;16B"):
                arr = np.asarray(im)
            else:
                raise DecoderUnavailableError(f"Pillow decodes this JPEG 2000 stream to mode {mode!r}, "
                                              "which this backend does not handle")
        if signed:  # Pillow returns signed components offset by 2**(precision - 1): remove it
            arr = (arr.astype(np.int32) - (1 << (precision - 1))).astype(np.int16 if precision <= 16 else np.int32)
        return arr, reduce


def _precision(codestream: bytes) -> tuple[int, bool]:
    """Bit depth and signedness of the first component from the SIZ marker (ISO 15444-1 A.5.1, Ssiz)."""
    i = codestream.find(b"\xff\x51")
    if i < 0 or i + 40 >= len(codestream):
        return 16, False
    ssiz = codestream[i + 40]
    return (ssiz & 0x7F) + 1, bool(ssiz & 0x80)


BACKEND = PillowBackend()
