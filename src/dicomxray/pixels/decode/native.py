"""Native (uncompressed) Pixel Data: implicit/explicit little endian, big endian, deflated.

The header inflates deflated datasets while parsing, so all four are raw samples;
the frame's bytes arrive already sliced (excess bytes after the last frame, common
in the SIIM data, are ignored; missing bytes are refused by the header).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...dicom.syntaxes import EXPLICIT_BE, NATIVE
from ._versions import dist_versions

if TYPE_CHECKING:
    from ...dicom.format import PixelFormat


class NumpyBackend:
    """Raw samples in native byte order, zero-copy for little endian."""

    name = "numpy"
    packages: tuple[str, ...] = ()
    syntaxes = NATIVE
    threaded: frozenset[str] = frozenset()

    def is_available(self, syntax: str) -> bool:
        return True

    def missing_packages(self, syntax: str) -> list[str]:
        return []

    def versions(self) -> dict[str, str]:
        return dist_versions(("numpy",))

    def max_reduce(self, fmt: PixelFormat, data: bytes | memoryview) -> int:
        return 0

    def decode(self, data: bytes | memoryview, fmt: PixelFormat, reduce: int, threads: int = 1) -> tuple[np.ndarray, int]:
        order = ">" if fmt.transfer_syntax == EXPLICIT_BE else "<"
        dtype = np.dtype(f"{order}u{fmt.bits_allocated // 8}")
        arr = np.frombuffer(data, dtype=dtype, count=fmt.rows * fmt.columns * fmt.samples_per_pixel)
        if order == ">" and dtype.itemsize > 1:
            arr = arr.astype(dtype.newbyteorder("="))
        return arr.reshape(fmt.rows, fmt.columns), 0


BACKEND = NumpyBackend()
