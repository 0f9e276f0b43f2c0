"""``read_xray``: the one pipeline, header -> decode -> render -> geometry.

The dataset, the cache, the CLI and the benchmarks all call this, so training
and inference can never see different pixels.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .config import DecodeConfig, GeometryConfig, Normalize, OutputDType, PipelineConfig, RenderConfig
from .decode import decode_frame
from .decode._syntaxes import NATIVE
from .errors import DicomXrayWarning, UnsupportedImageError
from .geometry import Geometry, plan_geometry, reduction_for, resize
from .header import display_tags, read_header
from .render import render

__all__ = ["XrayImage", "XrayMeta", "load_xray", "make_config", "read_xray"]

#: Resolution levels an opt-in reduced JPEG 2000 decode may drop.  Measured on real films (benchmarks/
#: bench_fidelity.py): one level stays >= 46 dB PSNR against full decoding with window/percentile
#: normalization; two levels fell to 39 dB on the shared CR hand (the low-pass band is not a box average).
MAX_REDUCED_LEVELS = 1


@dataclass(frozen=True)
class XrayMeta:
    """What the pipeline read and did.  Holds no patient identifiers."""

    path: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax: str
    decoder: str
    reduce: int
    frame: int
    bits_stored: int
    photometric: str
    modality_lut: str
    voi: str
    inverted: bool
    dtype: str
    geometry: Geometry = field(repr=False)

    @property
    def original_shape(self) -> tuple[int, int]:
        return (self.geometry.original_height, self.geometry.original_width)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> XrayMeta:
        data = dict(data)
        data["geometry"] = Geometry.from_dict(data["geometry"])
        return cls(**data)


@dataclass(frozen=True)
class XrayImage:
    """Rendered pixels plus :class:`XrayMeta`."""

    pixels: np.ndarray
    meta: XrayMeta


def make_config(
    size: int | tuple[int, int] | None = None,
    *,
    keep_ratio: bool = False,
    letterbox: bool = False,
    dtype: OutputDType | None = None,
    normalize: Normalize | None = None,
    frame: int | None = None,
    config: PipelineConfig | None = None,
) -> PipelineConfig:
    """Build a :class:`PipelineConfig` from the short-hand keywords of :func:`read_xray`.

    Keywords given explicitly override the matching fields of ``config``.
    """
    if keep_ratio and letterbox:
        raise ValueError("choose keep_ratio or letterbox, not both")
    cfg = config or PipelineConfig()
    geometry = cfg.geometry
    if size is not None or keep_ratio or letterbox:
        mode = "keep_ratio" if keep_ratio else "letterbox" if letterbox else geometry.mode
        geometry = GeometryConfig(size=size if size is not None else geometry.size, mode=mode, pad_value=geometry.pad_value)
    render_cfg = cfg.render
    if dtype is not None or normalize is not None:
        render_cfg = RenderConfig(**{**asdict(render_cfg), **({"dtype": dtype} if dtype else {}),
                                     **({"normalize": normalize} if normalize else {})})
    decode_cfg = cfg.decode if frame is None else DecodeConfig(**{**asdict(cfg.decode), "frame": frame})
    return PipelineConfig(decode=decode_cfg, render=render_cfg, geometry=geometry)


def load_xray(
    path: str | os.PathLike[str],
    size: int | tuple[int, int] | None = None,
    *,
    keep_ratio: bool = False,
    letterbox: bool = False,
    dtype: OutputDType | None = None,
    normalize: Normalize | None = None,
    frame: int | None = None,
    config: PipelineConfig | None = None,
) -> XrayImage:
    """Read, decode, render and resize one DICOM radiograph; return pixels and metadata.

    See :func:`read_xray` for the parameters.
    """
    cfg = make_config(size, keep_ratio=keep_ratio, letterbox=letterbox, dtype=dtype,
                      normalize=normalize, frame=frame, config=config)
    header = read_header(path, max_pixels=cfg.decode.max_pixels)
    tags = display_tags(header, cfg.decode.frame)
    geom = plan_geometry(header.rows, header.columns, cfg.geometry)
    reduce = reduction_for(geom, max_levels=MAX_REDUCED_LEVELS) if cfg.decode.reduced_resolution else 0
    decoded = decode_frame(header, frame=cfg.decode.frame, reduce=reduce, backend=cfg.decode.backend)
    try:
        image, info = render(
            decoded.array, tags, cfg.render,
            bits_allocated=header.bits_allocated, bits_stored=header.bits_stored, signed=header.signed,
            clip=header.transfer_syntax not in NATIVE,
        )
    except ValueError as exc:
        raise UnsupportedImageError(f"{header.path}: {exc}", path=header.path) from None
    if info.blank:
        warnings.warn(f"{header.path}: every pixel renders to the same value ({info.voi}, normalize="
                      f"{cfg.render.normalize!r}): the image is blank", DicomXrayWarning, stacklevel=2)
    pixels = resize(image, geom, pad_value=cfg.geometry.pad_value, reduce=decoded.reduce)
    meta = XrayMeta(
        path=header.path,
        sop_instance_uid=header.tag_text("SOPInstanceUID"),
        study_instance_uid=header.tag_text("StudyInstanceUID"),
        series_instance_uid=header.tag_text("SeriesInstanceUID"),
        transfer_syntax=str(header.transfer_syntax),
        decoder=decoded.backend,
        reduce=decoded.reduce,
        frame=cfg.decode.frame,
        bits_stored=header.bits_stored,
        photometric=header.photometric,
        modality_lut=info.modality,
        voi=info.voi,
        inverted=info.inverted,
        dtype=cfg.render.dtype,
        geometry=geom,
    )
    return XrayImage(pixels, meta)


def read_xray(
    path: str | os.PathLike[str],
    size: int | tuple[int, int] | None = None,
    *,
    keep_ratio: bool = False,
    letterbox: bool = False,
    dtype: OutputDType | None = None,
    normalize: Normalize | None = None,
    frame: int | None = None,
    config: PipelineConfig | None = None,
) -> np.ndarray:
    """Return a DICOM radiograph as a normalized 2-D array.

    Parameters
    ----------
    path : path-like
        A DICOM file (preamble and file meta optional).
    size : int or (height, width), optional
        Output size; ``None`` keeps full resolution.
    keep_ratio : bool
        Scale the longest side to ``size`` and keep the aspect ratio.
    letterbox : bool
        Keep the aspect ratio and pad to ``size x size``.
    dtype : {"uint8", "uint16", "float32"}
        Default ``uint8``; float32 lies in [0, 1].
    normalize : {"minmax", "window", "percentile"}
        Default ``minmax`` (the classic recipe).
    frame : int
        Frame of a multi-frame file (default 0).
    config : PipelineConfig
        Every other option (VOI index, polarity, decoder, size limit...).

    Raises
    ------
    DicomXrayError
        A subclass naming the file and what is wrong.
    """
    return load_xray(path, size, keep_ratio=keep_ratio, letterbox=letterbox, dtype=dtype,
                     normalize=normalize, frame=frame, config=config).pixels
