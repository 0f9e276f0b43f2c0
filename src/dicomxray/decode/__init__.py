"""Decoder registry: transfer syntax -> ordered backends, fastest first.

Each backend lives in its own module of this package and declares

* ``NAME`` - the name users pass as ``DecodeConfig(backend=...)``;
* ``PACKAGES`` - the pip packages it needs (named in errors when missing);
* ``SYNTAXES`` - the transfer syntax UIDs it decodes;
* ``is_available()`` - whether its imports succeed here;
* ``decode(header, frame, reduce)`` - the stored values of one frame as an
  integer array (raw bit patterns; masking and sign are the renderer's job),
  at ``2**-reduce`` of the full resolution where it supports reduction.

Backends are imported only when first used.  The order per syntax comes from
measurements on a 2-core machine (see ARCHITECTURE.md and ``benchmarks/``):
imagecodecs (libjpeg-turbo, CharLS, OpenJPEG, OpenJPH) first; pydicom's own
plugins as the fallback.  GDCM is never chosen automatically: it is slow to
hand buffers back and can ``abort()`` the process on hostile JPEG-LS data.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pydicom import uid

from ..errors import CorruptPixelDataError, DecoderUnavailableError, DicomXrayError
from ._syntaxes import J2K, JPEG_XL_LOSSLESS, JPEG_XL_LOSSY, JPEG_XL_RECOMPRESSION, NATIVE

if TYPE_CHECKING:
    import numpy as np

    from ..header import Header

__all__ = ["DecodeResult", "SYNTAX_NAMES", "backends_for", "capability_report", "decode_frame", "get_backend"]

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

#: Backend module per name; the order of names per syntax is decided below.
_MODULES = {
    "numpy": "native",
    "imagecodecs": "imagecodecs_backend",
    "pillow": "pillow_backend",
    "pydicom": "pydicom_backend",
}
_ENCAPSULATED_ORDER = ("imagecodecs", "pydicom")
_J2K_ORDER = ("imagecodecs", "pillow", "pydicom")
_J2K_REDUCED_ORDER = ("pillow", "imagecodecs", "pydicom")


@dataclass(frozen=True)
class DecodeResult:
    """Stored values of one frame and how they were obtained."""

    array: np.ndarray
    backend: str
    reduce: int  # resolution levels discarded (0 = full resolution)


def get_backend(name: str) -> ModuleType:
    """Import and return the backend module called ``name``."""
    try:
        module = _MODULES[name]
    except KeyError:
        raise ValueError(f"unknown decoder backend {name!r}; known: {sorted(_MODULES)}") from None
    return importlib.import_module(f"{__name__}.{module}")


def backends_for(syntax: str, *, reduced: bool = False) -> tuple[str, ...]:
    """Names of the backends that may decode ``syntax``, in order of preference."""
    if syntax in NATIVE:
        return ("numpy",)
    if syntax in J2K:
        return _J2K_REDUCED_ORDER if reduced else _J2K_ORDER
    if syntax in SYNTAX_NAMES:
        return _ENCAPSULATED_ORDER
    return ("pydicom",)  # unknown to us: maybe pydicom knows it


def _missing_packages(names: tuple[str, ...], syntax: str) -> list[str]:
    pkgs: list[str] = []
    for name in names:
        mod = get_backend(name)
        if syntax in mod.SYNTAXES:
            pkgs.extend(p for p in mod.missing_packages(syntax) if p not in pkgs)
    return pkgs


def decode_frame(header: Header, *, frame: int = 0, reduce: int = 0, backend: str | None = None) -> DecodeResult:
    """Decode one frame of ``header`` with the fastest installed backend.

    ``reduce`` asks for ``2**-reduce`` resolution; backends that cannot reduce
    ignore it and report ``reduce=0``.

    Backends that are not installed are skipped.  A backend that *fails* on
    the data is final (``CorruptPixelDataError``): a second decoder that
    accepts a stream the first rejected may well return garbage (seen with a
    corrupted JPEG-LS stream that CharLS rejected and libjpeg decoded), and a
    silent wrong image is worse than a named error.  The error suggests
    forcing another backend (``DecodeConfig(backend=...)``) for a quirky but
    valid file.  The one exception is a failed reduced-resolution decode,
    which is retried at full resolution, whichever backend failed.
    """
    syntax = header.transfer_syntax
    if frame >= header.frames:
        raise DicomXrayError(
            f"{header.path}: frame {frame} requested but the file has {header.frames} frame(s)", path=header.path
        )
    names = (backend,) if backend else backends_for(syntax, reduced=reduce > 0)
    tried: list[str] = []
    for name in names:
        mod = get_backend(name)
        if syntax not in mod.SYNTAXES and name != "pydicom":
            raise DecoderUnavailableError(
                f"{header.path}: backend {name!r} does not decode {_syntax_label(syntax)}", path=header.path
            )
        if not mod.is_available(syntax):
            continue
        try:
            array, got = mod.decode(header, frame, reduce)
        except DicomXrayError:
            raise
        except BaseException as exc:  # noqa: BLE001 - pyo3 PanicException derives from BaseException
            if isinstance(exc, (KeyboardInterrupt, SystemExit, MemoryError)):
                raise
            if reduce > 0:  # whichever backend failed: a reduced decode is retried at full resolution
                return decode_frame(header, frame=frame, reduce=0, backend=backend)
            tried.append(f"{name}: {type(exc).__name__}: {exc}")
            break
        _check_shape(header, array, got, name)
        return DecodeResult(array, name, got)
    if tried:
        others = [n for n in backends_for(syntax) if n != name and get_backend(n).is_available(syntax)]
        hint = f"; if the file is valid, try DecodeConfig(backend={others[0]!r})" if others and not backend else ""
        raise CorruptPixelDataError(
            f"{header.path}: cannot decode {_syntax_label(syntax)} pixel data ({'; '.join(tried)}){hint}",
            path=header.path,
        )
    pkgs = _missing_packages(names, syntax)
    hint = f"pip install {' '.join(pkgs)}" if pkgs else "no known package decodes it"
    raise DecoderUnavailableError(
        f"{header.path}: no installed decoder for {_syntax_label(syntax)}; {hint}", path=header.path
    )


def _syntax_label(syntax: str) -> str:
    return f"{SYNTAX_NAMES.get(syntax, 'transfer syntax')} ({syntax})"


def _check_shape(header: Header, array: Any, reduce: int, name: str) -> None:
    factor = 1 << reduce
    want = (-(-header.rows // factor), -(-header.columns // factor))
    if array.ndim != 2 or tuple(array.shape) != want:
        raise CorruptPixelDataError(
            f"{header.path}: {name} decoded an array of shape {tuple(array.shape)}, "
            f"the header declares {want[0]}x{want[1]}",
            path=header.path,
        )


def capability_report() -> list[dict[str, Any]]:
    """For every X-ray transfer syntax: the backend that would be used, the others, what to install."""
    rows = []
    for syntax, label in SYNTAX_NAMES.items():
        names = backends_for(syntax)
        available = [n for n in names if get_backend(n).is_available(syntax)]
        rows.append(
            {
                "uid": str(syntax),
                "name": label,
                "backend": available[0] if available else None,
                "fallbacks": available[1:],
                "install": [] if available else _missing_packages(names, syntax),
            }
        )
    return rows
