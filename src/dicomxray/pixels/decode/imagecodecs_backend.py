"""imagecodecs: libjpeg-turbo, CharLS, OpenJPEG, OpenJPH, libjxl and a DICOM RLE decoder in one wheel.

The fastest backend for every encapsulated syntax (``benchmarks/bench_backends.py`` measures it
against pydicom's plugins): libjpeg-turbo for JPEG, CharLS for JPEG-LS, OpenJPEG for JPEG 2000, and
OpenJPH for HTJ2K, which can also skip resolution levels.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ...dicom.syntaxes import ENCAPSULATED, HTJ2K, J2K, JPEG, JPEG_LS, JPEG_XL, RLE
from ._guards import resolution_levels
from ._versions import dist_versions

if TYPE_CHECKING:
    from ...dicom.format import PixelFormat

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


class ImagecodecsBackend:
    name = "imagecodecs"
    packages = ("imagecodecs",)
    syntaxes = ENCAPSULATED
    #: Where it honours ``threads``: OpenJPEG (JPEG 2000) and libjxl; libjpeg-turbo, CharLS, OpenJPH and RLE are serial.
    threaded = J2K | JPEG_XL

    def is_available(self, syntax: str) -> bool:
        codec = getattr(_module(), _CODEC.get(syntax, ""), None)
        return bool(codec is not None and codec.available)

    def missing_packages(self, syntax: str) -> list[str]:
        return [] if self.is_available(syntax) else list(self.packages)

    def versions(self) -> dict[str, str]:
        return dist_versions(self.packages)

    def max_reduce(self, fmt: PixelFormat, data: bytes | memoryview) -> int:
        """OpenJPH skips levels of HTJ2K, up to the codestream's decomposition levels (it fails past them)."""
        return resolution_levels(bytes(data[:4096])) if fmt.transfer_syntax in HTJ2K else 0

    def decode(self, data: bytes | memoryview, fmt: PixelFormat, reduce: int, threads: int = 1) -> tuple[np.ndarray, int]:
        ic = _module()
        syntax = fmt.transfer_syntax
        if syntax in JPEG:
            # libjpeg-turbo only: imagecodecs' liblj92 (ljpeg_decode) segfaults on hostile lossless streams
            # (found by fuzzing), so a stream libjpeg-turbo refuses is an error, not a second try.
            return ic.jpeg8_decode(data), 0
        if syntax in JPEG_LS:
            return ic.jpegls_decode(data), 0
        if syntax in J2K:
            return _squeeze(ic.jpeg2k_decode(data, numthreads=threads)), 0
        if syntax in HTJ2K:
            return _squeeze(ic.htj2k_decode(data, skipres=reduce or None)), reduce
        if syntax in JPEG_XL:
            return _squeeze(ic.jpegxl_decode(data, numthreads=threads)), 0
        # RLE Lossless (header validated by the guards): imagecodecs wants a mutable buffer and returns bytes.
        nbytes = fmt.bits_allocated // 8
        pixels = fmt.rows * fmt.columns * fmt.samples_per_pixel
        arr = np.frombuffer(ic.dicomrle_decode(bytearray(data), f"<u{nbytes}"), dtype=f"<u{nbytes}")
        if arr.size < pixels:
            raise ValueError(f"RLE frame decoded to {arr.size} samples, expected {pixels}")
        return arr[:pixels].reshape(fmt.rows, fmt.columns), 0


def _squeeze(arr: np.ndarray) -> np.ndarray:
    return arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr


BACKEND = ImagecodecsBackend()
