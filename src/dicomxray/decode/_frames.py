"""Getting one frame's bytes out of Pixel Data (shared by the backends)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydicom.encaps import get_frame
from pydicom.uid import JPEGLSLossless, JPEGLSNearLossless

from ..errors import CorruptPixelDataError

if TYPE_CHECKING:
    from ..header import Header


_JPEG_LS = frozenset({JPEGLSLossless, JPEGLSNearLossless})


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
    if header.transfer_syntax in _JPEG_LS and b"\xff\xd9" not in data[-8:]:  # EOI, maybe padded
        raise CorruptPixelDataError(
            f"{header.path}: JPEG-LS codestream of frame {frame} is truncated (no EOI marker)", path=header.path
        )
    return data
