"""Decoding one frame: the registry's backends for its transfer syntax, in order, behind shared guards.

The registry (:mod:`._registry`) maps each transfer syntax to ordered backends and is open:
:func:`register_backend` adds one from inside or outside the package, and installed plugins are found
through the ``dicomxray.decoders`` entry-point group.  Every backend implements :class:`Backend`: it
declares its packages and their versions, the syntaxes it decodes, whether it is installed, how many
resolution levels it can drop for a given frame, and decodes *bytes* plus a :class:`PixelFormat`,
never a pydicom Dataset.  :func:`decode_frame` extracts the frame and runs the codestream guards once
(:mod:`._guards`), whichever backend then decodes it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...dicom.format import FrameSource, PixelFormat
from ...dicom.syntaxes import SYNTAX_NAMES
from ...errors import CorruptPixelDataError, DecoderUnavailableError, DecoderWarning, DicomXrayError
from ._guards import checked_codestream
from ._registry import (
    BACKENDS,
    ENTRY_POINT_GROUP,
    Backend,
    backend_named,
    backends_for,
    check_backend_name,
    dist_versions,
    register_backend,
    registry_generation,
    registry_versions,
    unregister_backend,
)
from ._threads import decode_threads, running_decoder, share_cores

if TYPE_CHECKING:
    import numpy as np


__all__ = ["BACKENDS", "ENTRY_POINT_GROUP", "SYNTAX_NAMES", "Backend", "DecodeResult", "PixelFormat", "backends_for",
           "capability_report", "check_backend_name", "decode_frame", "decode_threads", "dist_versions",
           "register_backend", "registry_generation", "registry_versions", "share_cores", "unregister_backend"]


@dataclass(frozen=True)
class DecodeResult:
    """Stored values of one frame and how they were obtained."""

    array: np.ndarray
    backend: str
    reduce: int  # resolution levels discarded (0 = full resolution)
    threads: int = 1  # threads the codec was allowed (1 for codecs that cannot use more)


def decode_frame(header: FrameSource, *, frame: int = 0, reduce: int = 0, backend: str | None = None,
                 threads: int | None = None) -> DecodeResult:
    """Decode one frame of ``header`` with the first installed backend that can.

    ``reduce`` asks for ``2**-reduce`` resolution: backends that can drop
    levels for this frame are tried first; the others decode at full resolution.

    Backends that are not installed are skipped.  A backend that cannot decode
    this stream (a feature, bit depth or variant it lacks) raises
    :class:`DecoderUnavailableError`; the next backend is then tried, with a
    :class:`~dicomxray.errors.DecoderWarning` naming both.  A backend that
    *rejects* the data is final (``CorruptPixelDataError``): a second decoder
    that accepts a stream the first rejected may return garbage (seen with a
    corrupted JPEG-LS stream that CharLS rejected and libjpeg decoded), and a
    silent wrong image is worse than a named error.  The error suggests forcing
    another backend (``DecodeConfig(backend=...)``) for a quirky but valid file.
    The one exception is a failed reduced-resolution decode, which is retried at
    full resolution, whichever backend failed.  When no backend decodes the
    stream, the ``DecoderUnavailableError`` lists each backend's reason.

    ``threads`` caps the threads of codecs that can use several (JPEG 2000, JPEG XL);
    ``None`` applies the thread policy of :func:`._threads.decode_threads`.
    """
    fmt = header.pixel_format()
    syntax = fmt.transfer_syntax
    if backend and syntax not in backend_named(backend).syntaxes:
        raise DecoderUnavailableError(f"{fmt.path}: backend {backend!r} does not decode {_syntax_label(syntax)}",
                                      path=fmt.path)
    data = header.frame_bytes(frame)
    if header.encapsulated:
        data = checked_codestream(data, fmt, frame)
    names = (backend,) if backend else backends_for(syntax)
    if reduce > 0:  # backends that can drop levels for this frame first, in their order
        names = tuple(sorted(names, key=lambda n: BACKENDS[n].max_reduce(fmt, data) == 0))
    failure = ""
    reasons: list[tuple[str, str]] = []  # (backend, why it did not decode this stream)
    for name in names:
        b = BACKENDS[name]
        if not b.is_available(syntax):
            missing = b.missing_packages(syntax)
            reasons.append((name, f"not installed (pip install {' '.join(missing)})" if missing else "not installed"))
            continue
        try:
            with running_decoder():
                n = decode_threads(threads) if syntax in b.threaded else 1
                array, got = b.decode(data, fmt, min(reduce, b.max_reduce(fmt, data)) if reduce else 0, threads=n)
        except DecoderUnavailableError as exc:  # a capability gap, no verdict on the data: try the next one
            reasons.append((name, str(exc)))
            continue
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
        gaps = [(n_, why) for n_, why in reasons if not why.startswith("not installed")]
        if gaps:
            warnings.warn(f"{fmt.path}: {gaps[-1][0]} cannot decode this {_syntax_label(syntax)} stream "
                          f"({gaps[-1][1]}); decoded by {name} instead", DecoderWarning, stacklevel=2)
        return DecodeResult(array, name, got, n)
    if failure:
        others = [n for n in backends_for(syntax) if n not in names[:1] and BACKENDS[n].is_available(syntax)]
        hint = f"; if the file is valid, try DecodeConfig(backend={others[0]!r})" if others and not backend else ""
        raise CorruptPixelDataError(
            f"{fmt.path}: cannot decode {_syntax_label(syntax)} pixel data ({failure}){hint}", path=fmt.path)
    pkgs = _missing_packages(names, syntax)
    hint = f"pip install {' '.join(pkgs)}" if pkgs else "no known package decodes it"
    tried = "; ".join(f"{n}: {why}" for n, why in reasons)
    if any(not why.startswith("not installed") for _, why in reasons):
        raise DecoderUnavailableError(f"{fmt.path}: no installed backend decodes this {_syntax_label(syntax)} "
                                      f"stream ({tried})", path=fmt.path)
    raise DecoderUnavailableError(f"{fmt.path}: no installed decoder for {_syntax_label(syntax)}; {hint}"
                                  + (f" ({tried})" if tried else ""), path=fmt.path)


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
