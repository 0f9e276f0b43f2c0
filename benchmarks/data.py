"""Benchmark images: chest-like phantoms in every transfer syntax, cached on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom import uid

from dicomxray.testing import chest_phantom, write_dicom

DATA = Path(__file__).resolve().parent.parent / ".bench_data"

#: The syntaxes benchmarked, with short labels.
SYNTAXES = {
    uid.ExplicitVRLittleEndian: "uncompressed",
    uid.DeflatedExplicitVRLittleEndian: "deflate",
    uid.JPEGBaseline8Bit: "jpeg-baseline-8bit",
    uid.JPEGExtended12Bit: "jpeg-extended-12bit",
    uid.JPEGLossless: "jpeg-lossless-p14",
    uid.JPEGLosslessSV1: "jpeg-lossless-sv1",
    uid.JPEGLSLossless: "jpeg-ls",
    uid.JPEGLSNearLossless: "jpeg-ls-near",
    uid.JPEG2000Lossless: "jpeg2000-lossless",
    uid.JPEG2000: "jpeg2000-lossy",
    uid.HTJ2KLossless: "htj2k-lossless",
    uid.HTJ2K: "htj2k-lossy",
    uid.RLELossless: "rle",
}


def bench_file(syntax: str, *, height: int = 2500, width: int = 2048, bits: int = 12, mono1: bool = True) -> Path:
    """Path of the benchmark image for these parameters, generated on first use."""
    label = SYNTAXES[syntax]
    path = DATA / f"{label}_{height}x{width}_{bits}bit_{'mono1' if mono1 else 'mono2'}.dcm"
    if path.exists():
        return path
    stored = chest_phantom(height, width, bits=bits, seed=height + bits)
    bits_stored = bits
    if syntax == uid.JPEGBaseline8Bit:
        stored, bits_stored = (stored >> (bits - 8)).astype(np.uint8), 8
    elif syntax == uid.JPEGExtended12Bit and bits > 12:
        stored, bits_stored = (stored >> (bits - 12)).astype(np.uint16), 12
    top = (1 << bits_stored) - 1
    if mono1:
        stored = (top - stored).astype(stored.dtype)
    center, width_ = top * 0.45, top * 0.8
    tmp = path.with_suffix(".tmp")
    write_dicom(tmp, stored, syntax=syntax, bits_stored=bits_stored, window=(center, width_),
                photometric="MONOCHROME1" if mono1 else "MONOCHROME2")
    tmp.replace(path)
    return path
