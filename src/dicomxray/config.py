"""Frozen, keyword-only, validated configuration for every pipeline step.

No I/O happens here. :meth:`PipelineConfig.fingerprint` is a stable hash of
every option that changes the output bytes; the cache key uses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

__all__ = [
    "CacheConfig",
    "DecodeConfig",
    "GeometryConfig",
    "Normalize",
    "OutputDType",
    "PipelineConfig",
    "RenderConfig",
    "ResizeMode",
    "ShortOptions",
    "pipeline_config",
]

Normalize = Literal["minmax", "window", "percentile"]
OutputDType = Literal["uint8", "uint16", "float32"]
ResizeMode = Literal["square", "keep_ratio", "letterbox"]
CacheIdentity = Literal["stat", "content"]

_NORMALIZE = frozenset({"minmax", "window", "percentile"})
_DTYPES = frozenset({"uint8", "uint16", "float32"})
_MODES = frozenset({"square", "keep_ratio", "letterbox"})
_IDENTITIES = frozenset({"stat", "content"})

#: The output side a training data set gets when nothing says otherwise (dataset, cache build, preview, bench, demo).
TRAINING_SIZE = 512

#: Default refusal threshold for Rows x Columns x Frames: 8x the largest
#: radiographs we know of (about 5,000 x 6,000), far below a bomb's 8 GB.
DEFAULT_MAX_PIXELS = 256 * 1024 * 1024


def _check_choice(name: str, value: object, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class DecodeConfig:
    """How stored values are obtained.

    Parameters
    ----------
    frame : int
        Index of the frame to decode in a multi-frame file (0 = first).
    max_pixels : int
        Refuse files whose declared Rows x Columns x NumberOfFrames exceeds
        this, before anything is allocated.
    backend : str or None
        Force a decoder backend by name (see ``dicomxray doctor``); ``None``
        picks the fastest installed one for the transfer syntax.  Any name the
        decoder registry knows (the built-ins, a backend added with
        :func:`dicomxray.pixels.decode.register_backend` or installed as a
        plugin) is accepted; :class:`dicomxray.Pipeline` checks it against the
        registry (this module cannot see it).
    reduced_resolution : bool
        Opt-in: let JPEG 2000 / HTJ2K decode a reduced resolution level when
        the requested output is at most half the source size (several times
        faster).  Off by default because it changes the image: a reduced level
        is the wavelet low-pass band, not a box average.  It needs
        ``RenderConfig(normalize="window")`` or ``"percentile"``:
        :class:`PipelineConfig` refuses it with ``"minmax"``, because the low-pass
        band loses the image's extreme pixels, so a min-max stretch can differ
        from the full decode's (24.6 dB PSNR with one hot pixel in a 12-bit film).
    threads : int or None
        Threads one decode may use where the codec can use several (JPEG 2000,
        JPEG XL).  ``None`` (the default) applies the thread policy: the cores
        this process may run on divided among the decoders running at once (one
        inside DataLoader workers and job processes unless cores are left over).
        Threads never change the pixels, so this is not part of
        :meth:`PipelineConfig.fingerprint`.
    """

    frame: int = 0
    max_pixels: int = DEFAULT_MAX_PIXELS
    backend: str | None = None
    reduced_resolution: bool = False
    threads: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.frame, int) or self.frame < 0:
            raise ValueError(f"frame must be a non-negative int, got {self.frame!r}")
        if not isinstance(self.max_pixels, int) or self.max_pixels <= 0:
            raise ValueError(f"max_pixels must be a positive int, got {self.max_pixels!r}")
        if self.backend is not None and (not isinstance(self.backend, str) or not self.backend):
            raise ValueError(f"backend must be a decoder backend's name or None, got {self.backend!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"threads must be a positive int or None, got {self.threads!r}")


@dataclass(frozen=True, kw_only=True)
class RenderConfig:
    """The DICOM display chain (PS3.3 C.11) and the output encoding.

    Parameters
    ----------
    voi : bool
        Apply the VOI transform (VOI LUT Sequence or Window Center/Width).
    voi_index : int
        Which window / VOI LUT to use when several are given.
    prefer_lut : bool
        When both a VOI LUT Sequence and a window exist, use the LUT.
    polarity : bool
        Invert MONOCHROME1 / Presentation LUT Shape INVERSE images (once).
    normalize : {"minmax", "window", "percentile"}
        ``minmax`` stretches the image's own range (the classic recipe);
        ``window`` maps the VOI output range (the window, the VOI LUT's range,
        or with VOI off the full modality range) to the full output range with
        no data-dependent stretch; ``percentile`` clips at ``percentiles`` of
        the image then stretches.
    percentiles : (float, float)
        Lower and upper percentiles for ``normalize="percentile"``.
    dtype : {"uint8", "uint16", "float32"}
        Output type: integers use the full range, float32 lies in [0, 1].
    """

    voi: bool = True
    voi_index: int = 0
    prefer_lut: bool = True
    polarity: bool = True
    normalize: Normalize = "minmax"
    percentiles: tuple[float, float] = (0.5, 99.5)
    dtype: OutputDType = "uint8"

    def __post_init__(self) -> None:
        _check_choice("normalize", self.normalize, _NORMALIZE)
        _check_choice("dtype", self.dtype, _DTYPES)
        if not isinstance(self.voi_index, int) or self.voi_index < 0:
            raise ValueError(f"voi_index must be a non-negative int, got {self.voi_index!r}")
        lo, hi = self.percentiles
        if not 0.0 <= lo < hi <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {self.percentiles!r}")
        object.__setattr__(self, "percentiles", (float(lo), float(hi)))


@dataclass(frozen=True, kw_only=True)
class GeometryConfig:
    """Output geometry.

    Parameters
    ----------
    size : int, (height, width) or None
        ``None`` keeps full resolution.  An int is the square side for
        ``square``/``letterbox`` and the longest side for ``keep_ratio``.
    mode : {"square", "keep_ratio", "letterbox"}
        ``square`` stretches to size x size (the classic recipe);
        ``keep_ratio`` scales the longest side to ``size``; ``letterbox``
        keeps the ratio and pads, centred, to size x size.
    pad_value : float
        Fill value of letterbox padding, in output units of [0, 1].
    """

    size: int | tuple[int, int] | None = None
    mode: ResizeMode = "square"
    pad_value: float = 0.0

    def __post_init__(self) -> None:
        _check_choice("mode", self.mode, _MODES)
        size = self.size
        if isinstance(size, list):
            size = tuple(size)
            object.__setattr__(self, "size", size)
        if size is None:
            return
        if isinstance(size, bool) or not (
            (isinstance(size, int) and size > 0)
            or (
                isinstance(size, tuple)
                and len(size) == 2
                and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
            )
        ):
            raise ValueError(f"size must be a positive int or (height, width), got {self.size!r}")
        if isinstance(size, tuple) and self.mode == "keep_ratio":
            raise ValueError("mode='keep_ratio' takes an int size (the longest side)")
        if not 0.0 <= self.pad_value <= 1.0:
            raise ValueError(f"pad_value must lie in [0, 1], got {self.pad_value!r}")


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    """Everything :func:`dicomxray.read_xray` needs, bundled for the cache key.

    ``DecodeConfig(reduced_resolution=True)`` with ``RenderConfig(normalize="minmax")`` is refused
    (``ValueError``): see :class:`DecodeConfig`.
    """

    decode: DecodeConfig = field(default_factory=DecodeConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    geometry: GeometryConfig = field(default_factory=GeometryConfig)

    def __post_init__(self) -> None:
        if self.decode.reduced_resolution and self.render.normalize == "minmax":
            raise ValueError(
                "reduced_resolution=True needs normalize='window' or 'percentile', not 'minmax': a reduced JPEG 2000 "
                "level is the wavelet low-pass band, which loses the image's extreme pixels, so a min-max stretch "
                "can differ from full decoding (24.6 dB PSNR with one hot pixel in a 12-bit film)")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable description of every option."""
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Stable hex digest of every option that changes the output bytes (computed once)."""
        cached = self.__dict__.get("_fingerprint")
        if cached is not None:
            return str(cached)
        data = self.to_dict()
        del data["decode"]["threads"]  # how many threads decode never changes the pixels
        # Which backend decodes a lossless stream does not change the pixels,
        # but lossy decoding and reduced-resolution decoding can: keep both.
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(blob.encode()).hexdigest()[:24]
        object.__setattr__(self, "_fingerprint", digest)  # a cache, not a field: eq/hash/asdict ignore it
        return digest


@dataclass(frozen=True, kw_only=True)
class CacheConfig:
    """The on-disk cache of rendered arrays (:class:`dicomxray.XrayCache`).

    Parameters
    ----------
    directory : str
        Where entries live (created if missing); many processes may share it.
    identity : {"stat", "content"}
        ``stat`` keys on path, size, mtime, ctime and inode (one ``stat`` per access;
        a ``cp -p`` replacement has a new inode and ctime); ``content`` on a SHA-256
        of the bytes (survives copies and moves, but every access, a hit too, reads
        and hashes the whole source: milliseconds against microseconds).
    strict : bool
        Raise :class:`CacheError` when an entry cannot be written, instead of
        warning once and carrying on uncached.
    check_crc : bool
        Verify every entry's pixel checksum on read (size and header are always checked).
    """

    directory: str
    identity: CacheIdentity = "stat"
    strict: bool = False
    check_crc: bool = False

    def __post_init__(self) -> None:
        import os

        object.__setattr__(self, "directory", os.path.expanduser(os.fspath(self.directory)))
        _check_choice("identity", self.identity, _IDENTITIES)

    @classmethod
    def of(cls, value: CacheConfig | str | os.PathLike[str]) -> CacheConfig:
        """``value`` if it is a config, else the default config for that directory."""
        return value if isinstance(value, CacheConfig) else cls(directory=os.fspath(value))


class ShortOptions(TypedDict, total=False):
    """The short-hand keywords of :func:`read_xray` / :func:`load_xray` (see :func:`pipeline_config`)."""

    keep_ratio: bool
    letterbox: bool
    dtype: OutputDType | None
    normalize: Normalize | None
    frame: int | None


def pipeline_config(
    config: PipelineConfig | None = None,
    *,
    size: int | tuple[int, int] | None = None,
    keep_ratio: bool = False,
    letterbox: bool = False,
    dtype: OutputDType | None = None,
    normalize: Normalize | None = None,
    frame: int | None = None,
) -> PipelineConfig:
    """``config`` (default: all defaults) with the short-hand options of :func:`dicomxray.read_xray` applied.

    Options given explicitly override the matching fields of ``config``.
    """
    if keep_ratio and letterbox:
        raise ValueError("choose keep_ratio or letterbox, not both")
    cfg = config or PipelineConfig()
    geometry, render, decode = cfg.geometry, cfg.render, cfg.decode
    if size is not None or keep_ratio or letterbox:
        mode = "keep_ratio" if keep_ratio else "letterbox" if letterbox else geometry.mode
        geometry = dataclasses.replace(geometry, size=size if size is not None else geometry.size, mode=mode)
    if dtype is not None:
        render = dataclasses.replace(render, dtype=dtype)
    if normalize is not None:
        render = dataclasses.replace(render, normalize=normalize)
    if frame is not None:
        decode = dataclasses.replace(decode, frame=frame)
    return dataclasses.replace(cfg, decode=decode, render=render, geometry=geometry)
