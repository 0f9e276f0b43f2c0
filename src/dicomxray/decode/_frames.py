"""Getting one frame's bytes out of Pixel Data (shared by the backends)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydicom.encaps import get_frame

from ..errors import CorruptPixelDataError

if TYPE_CHECKING:
    from ..header import Header


def encapsulated_frame(header: Header, frame: int) -> bytes:
    """Return the codestream of ``frame`` from encapsulated Pixel Data (PS3.5 A.4)."""
    try:
        return bytes(get_frame(bytes(header.pixel_data), frame, number_of_frames=header.frames))
    except Exception as exc:  # pydicom raises ValueError/KeyError/struct.error on broken items
        raise CorruptPixelDataError(
            f"{header.path}: encapsulated Pixel Data is broken, cannot find frame {frame} ({exc})",
            path=header.path,
        ) from None
