"""Decoder registry: transfer syntax -> ordered backends, fastest first.

The registry is data.  :data:`PREFERENCE` (in :mod:`dicomxray.dicom.syntaxes`, so the
configs can validate backend names without importing codecs) maps each transfer
syntax family to backend names in the order measured fastest on a 2-core machine
(``benchmarks/bench_backends.py``): imagecodecs (libjpeg-turbo, CharLS,
OpenJPEG, OpenJPH, libjxl) first; Pillow's OpenJPEG for JPEG 2000 (it can
drop resolution levels); pydicom's own plugins as the fallback.  GDCM is never
chosen: it is slow to hand buffers back and can ``abort()`` the process on
hostile JPEG-LS data.

Every backend implements :class:`Backend`: it declares its packages, the
syntaxes it decodes, whether it is installed, how many resolution levels it
can drop for a given frame, and decodes *bytes* plus a :class:`PixelFormat`,
never a pydicom Dataset.  :func:`decode_frame` extracts the frame and runs the
codestream guards once (:mod:`._guards`), whichever backend then decodes it.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydicom import uid

from ...dicom.format import FrameSource, PixelFormat
from ...dicom.syntaxes import JPEG_XL_LOSSLESS, JPEG_XL_LOSSY, JPEG_XL_RECOMPRESSION, PREFERENCE
from ...errors import CorruptPixelDataError, DecoderUnavailableError, DicomXrayError
from . import imagecodecs_backend, native, pillow_backend, pydicom_backend
from ._guards import checked_codestream
from ._threads import decode_threads, running_decoder, share_cores

if TYPE_CHECKING:
    import numpy as np


__all__ = ["BACKENDS", "PREFERENCE", "SYNTAX_NAMES", "Backend", "DecodeResult", "PixelFormat", "backends_for",
           "capability_report", "decode_frame", "decode_threads", "share_cores"]

#: The transfer syntaxes radiographs come in, with readable names.
SYNTAX_NAMES: dict[str, str] = {
    uid.ImplicitVRLittleEndian: "Implicit VR Little Endian",
    uid.ExplicitVRLittleEndian: "Explicit VR Little Endian",
    uid.ExplicitVRBigEndian: "Explicit VR Big Endian",
    uid.DeflatedExplicitVRLittleEndian: "Deflated Explicit VR Little Endian",
    uid.JPEGBaseline8Bit: "JPEG Baseline (Process 1)",
    uid.JPEGExtended12Bit: "JPEG Extended (Process 2 & 4)",
    uid.JPEGLossless: "JPEG Lossless (Process 14)",
    uid.JPEGLosslessSV1: "JPEG Lossless SV1 (Process 14, predictor 1)",
    uid.JPEGLSLossless: "JPEG-LS Lossless",
    uid.JPEGLSNearLossless: "JPEG-LS Near-Lossless",
    uid.JPEG2000Lossless: "JPEG 2000 Lossless",
    uid.JPEG2000: "JPEG 2000",
    uid.HTJ2KLossless: "HTJ2K Lossless",
    uid.HTJ2KLosslessRPCL: "HTJ2K Lossless RPCL",
    uid.HTJ2K: "HTJ2K",
    uid.RLELossless: "RLE Lossless",
    JPEG_XL_LOSSLESS: "JPEG XL Lossless",
    JPEG_XL_RECOMPRESSION: "JPEG XL JPEG Recompression",
    JPEG_XL_LOSSY: "JPEG XL",
}


class Backend(Protocol):
    """What a decoder backend declares and does."""

    @property
    def name(self) -> str:
        """What users pass as ``DecodeConfig(backend=...)``."""
        ...

    @property
    def packages(self) -> tuple[str, ...]:
        """The pip packages it needs, named in errors when missing."""
        ...

    @property
    def syntaxes(self) -> AbstractSet[str]:
        """The transfer syntax UIDs it decodes."""
        ...

    def is_available(self, syntax: str) -> bool:
        """Whether what it needs for ``syntax`` is installed here."""
        ...

    def missing_packages(self, syntax: str) -> list[str]:
        """The pip packages that would make ``syntax`` decodable by it."""
        ...

    @property
    def threaded(self) -> AbstractSet[str]:
        """The transfer syntax UIDs for which it honours ``threads`` (see :mod:`._threads`)."""
        ...

    def max_reduce(self, fmt: PixelFormat, data: bytes | memoryview) -> int:
        """How many resolution levels it can drop when decoding this frame (0: none)."""
        ...

    def decode(self, data: bytes | memoryview, fmt: PixelFormat, reduce: int, threads: int = 1) -> tuple[np.ndarray, int]:
        """The frame's samples (2-D integers) at ``2**-r`` resolution, and ``r`` (``r <= reduce``), with up to
        ``threads`` threads where the codec can use them (the same samples whatever the count)."""
        ...


#: Every backend by name; :data:`dicomxray.dicom.syntaxes.PREFERENCE` orders them per syntax family.
BACKENDS: dict[str, Backend] = {b.name: b for b in (
    native.BACKEND, imagecodecs_backend.BACKEND, pillow_backend.BACKEND, pydicom_backend.BACKEND)}


@dataclass(frozen=True)
class DecodeResult:
    """Stored values of one frame and how they were obtained."""

    array: np.ndarray
    backend: str
    reduce: int  # resolution levels discarded (0 = full resolution)
    threads: int = 1  # threads the codec was allowed (1 for codecs that cannot use more)


def backends_for(syntax: str) -> tuple[str, ...]:
    """Names of the backends that may decode ``syntax``, in order of preference."""
    return next((names for family, names in PREFERENCE if syntax in family), ("pydicom",))


def decode_frame(header: FrameSource, *, frame: int = 0, reduce: int = 0, backend: str | None = None,
                 threads: int | None = None) -> DecodeResult:
    """Decode one frame of ``header`` with the fastest installed backend.

    ``reduce`` asks for ``2**-reduce`` resolution: backends that can drop
    levels for this frame are tried first; the others decode at full resolution.

    Backends that are not installed are skipped.  A backend that *fails* on the
    data is final (``CorruptPixelDataError``): a second decoder that accepts a
    stream the first rejected may return garbage (seen with a corrupted JPEG-LS
    stream that CharLS rejected and libjpeg decoded), and a silent wrong image
    is worse than a named error.  The error suggests forcing another backend
    (``DecodeConfig(backend=...)``) for a quirky but valid file.  The one
    exception is a failed reduced-resolution decode, which is retried at full
    resolution, whichever backend failed.

    ``threads`` caps the threads of codecs that can use several (JPEG 2000, JPEG XL);
    ``None`` applies the thread policy of :func:`._threads.decode_threads`.
    """
    fmt = header.pixel_format()
    syntax = fmt.transfer_syntax
    data = header.frame_bytes(frame)
    if header.encapsulated:
        data = checked_codestream(data, fmt, frame)
    names = (backend,) if backend else backends_for(syntax)
    if backend and syntax not in BACKENDS[backend].syntaxes:
        raise DecoderUnavailableError(f"{fmt.path}: backend {backend!r} does not decode {_syntax_label(syntax)}",
                                      path=fmt.path)
    if reduce > 0:  # backends that can drop levels for this frame first, in their order
        names = tuple(sorted(names, key=lambda n: BACKENDS[n].max_reduce(fmt, data) == 0))
    failure = ""
    for name in names:
        b = BACKENDS[name]
        if not b.is_available(syntax):
            continue
        try:
            with running_decoder():
                n = decode_threads(threads) if syntax in b.threaded else 1
                array, got = b.decode(data, fmt, min(reduce, b.max_reduce(fmt, data)) if reduce else 0, threads=n)
        except DicomXrayError:
            raise
        except BaseException as exc:  # noqa: BLE001 - pyo3 PanicException derives from BaseException
            if isinstance(exc, (KeyboardInterrupt, SystemExit, MemoryError)):
                raise
            if reduce > 0:
                return decode_frame(header, frame=frame, reduce=0, backend=backend, threads=threads)
            failure = f"{name}: {type(exc).__name__}: {exc}"
            break
        _check_shape(fmt, array, got, name)
        return DecodeResult(array, name, got, n)
    if failure:
        others = [n for n in backends_for(syntax) if n not in names[:1] and BACKENDS[n].is_available(syntax)]
        hint = f"; if the file is valid, try DecodeConfig(backend={others[0]!r})" if others and not backend else ""
        raise CorruptPixelDataError(
            f"{fmt.path}: cannot decode {_syntax_label(syntax)} pixel data ({failure}){hint}", path=fmt.path)
    pkgs = _missing_packages(names, syntax)
    hint = f"pip install {' '.join(pkgs)}" if pkgs else "no known package decodes it"
    raise DecoderUnavailableError(f"{fmt.path}: no installed decoder for {_syntax_label(syntax)}; {hint}",
                                  path=fmt.path)


def _missing_packages(names: tuple[str, ...], syntax: str) -> list[str]:
    pkgs: list[str] = []
    for name in names:
        if syntax in BACKENDS[name].syntaxes:
            pkgs.extend(p for p in BACKENDS[name].missing_packages(syntax) if p not in pkgs)
    return pkgs


def _syntax_label(syntax: str) -> str:
    return f"{SYNTAX_NAMES.get(syntax, 'transfer syntax')} ({syntax})"


def _check_shape(fmt: PixelFormat, array: Any, reduce: int, name: str) -> None:
    factor = 1 << reduce
    want = (-(-fmt.rows // factor), -(-fmt.columns // factor))
    if array.ndim != 2 or tuple(array.shape) != want:
        raise CorruptPixelDataError(
            f"{fmt.path}: {name} decoded an array of shape {tuple(array.shape)}, the header declares {want[0]}x{want[1]}",
            path=fmt.path,
        )


def capability_report() -> list[dict[str, Any]]:
    """For every X-ray transfer syntax: the backend that would be used, the others, what to install."""
    rows = []
    for syntax, label in SYNTAX_NAMES.items():
        names = backends_for(syntax)
        available = [n for n in names if BACKENDS[n].is_available(syntax)]
        rows.append({
            "uid": str(syntax), "name": label, "backend": available[0] if available else None,
            "fallbacks": available[1:], "install": [] if available else _missing_packages(names, syntax),
        })
    return rows
