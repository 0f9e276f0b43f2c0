"""What a decoder backend sees besides the bytes, and what the registry needs from a parsed file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["FrameSource", "PixelFormat"]


@dataclass(frozen=True)
class PixelFormat:
    """The pixel format of one frame: all a decoder backend sees besides the bytes."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    transfer_syntax: str
    path: str  # for error messages only


class FrameSource(Protocol):
    """A parsed file the registry decodes frames of (``dicomxray.dicom.header.Header``)."""

    @property
    def encapsulated(self) -> bool: ...

    def pixel_format(self) -> PixelFormat: ...

    def frame_bytes(self, frame: int) -> bytes | memoryview: ...
