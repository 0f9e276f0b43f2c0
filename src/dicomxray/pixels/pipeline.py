"""The one pipeline: header -> decode -> render -> resize, as named stages of :class:`Pipeline`.

The dataset, the cache, the CLI and the benchmarks all run this object, so
training and inference can never see different pixels.  ``read_xray`` and
``load_xray`` are its shorthands.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import PipelineConfig, pipeline_config
from ..dicom.display import display_tags
from ..dicom.header import Header, max_file_bytes, read_header
from ..errors import RenderWarning, UnsupportedImageError
from ..io.source import FileIdentity, Location, Opener, Source
from .decode import DecodeResult, check_backend_name, decode_frame
from .geometry import Geometry, plan_geometry, reduction_for, resamples, resize
from .render import RenderError, RenderInfo, render

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..config import ShortOptions

__all__ = ["MAX_REDUCED_LEVELS", "Pipeline", "XrayImage", "XrayMeta", "load_xray", "read_xray"]

#: Resolution levels an opt-in reduced JPEG 2000 decode may drop (one, whenever the total reduction factor
#: is >= 2 on both axes).  Measured on the shared real films (``python -m benchmarks.bench_fidelity``,
#: docs/guide/jpeg2000.md): two levels fell to 37.4 dB PSNR against full decoding on the CR hand (the
#: low-pass band is not a box average).  ``minmax`` normalization is refused with it (see
#: :class:`~dicomxray.config.PipelineConfig`).
MAX_REDUCED_LEVELS = 1

Path = str | os.PathLike[str]


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

    @cached_property
    def record(self) -> dict[str, Any]:
        """What a training sample carries, computed once per image instead of once per access: path and
        UIDs (strings), ``original_size`` (int64 ``[H, W]``) and one geometry record (float64, the ten
        numbers of :meth:`Geometry.to_record`; :meth:`Geometry.from_record` reads it back), as arrays the
        dataset wraps without a copy and any collate stacks cheaply."""
        return {"path": self.path, "sop_instance_uid": self.sop_instance_uid,
                "study_instance_uid": self.study_instance_uid, "series_instance_uid": self.series_instance_uid,
                "original_size": np.array(self.original_shape, np.int64),
                "geometry": np.array(self.geometry.to_record(), np.float64)}

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) if f.name != "geometry" else self.geometry.to_dict() for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> XrayMeta:
        data = dict(data)
        data["geometry"] = Geometry.from_dict(data["geometry"])
        return cls(**data)


@dataclass(frozen=True)
class XrayImage:
    """Rendered pixels plus :class:`XrayMeta`, and the identity of the bytes they came from."""

    pixels: np.ndarray
    meta: XrayMeta
    identity: FileIdentity | None = field(default=None, repr=False, compare=False)


class Pipeline:
    """header -> decode -> render -> resize for one :class:`PipelineConfig`.

    Each stage is a method, so benchmarks time exactly what :meth:`read` runs::

        p = Pipeline(PipelineConfig(geometry=GeometryConfig(size=512)))
        header = p.header(path)
        geom = p.plan(header)
        decoded = p.decode(header, geom)
        image, info = p.render(header, decoded)
        pixels = p.resize(image, geom, decoded.reduce)
    """

    def __init__(self, config: PipelineConfig | None = None, *, storage_options: Mapping[str, Any] | None = None,
                 opener: Opener | None = None) -> None:
        self.config = config or PipelineConfig()
        check_backend_name(self.config.decode.backend)  # the registry knows the names, the config cannot
        #: Where URLs are read from (``storage_options`` for fsspec); local paths need none.
        self.opener = opener if opener is not None else Opener(storage_options)

    def __repr__(self) -> str:
        return f"Pipeline({self.config!r})"

    def header(self, source: Path | Location | Source) -> Header:
        """Read the file (or URL: one GET) once through the opener and validate its pixel-describing tags."""
        if not isinstance(source, Source):
            source = self.opener.read(source, max_bytes=max_file_bytes(self.config.decode.max_pixels))
        return read_header(source, max_pixels=self.config.decode.max_pixels)

    def plan(self, header: Header) -> Geometry:
        """The output geometry for this image."""
        return plan_geometry(header.rows, header.columns, self.config.geometry)

    def decode(self, header: Header, geom: Geometry) -> DecodeResult:
        """Stored values of the configured frame (at a reduced resolution level only when opted in)."""
        cfg = self.config.decode
        reduce = reduction_for(geom, max_levels=MAX_REDUCED_LEVELS) if cfg.reduced_resolution else 0
        return decode_frame(header, frame=cfg.frame, reduce=reduce, backend=cfg.backend, threads=cfg.threads)

    def render(self, header: Header, decoded: DecodeResult, *, out: np.ndarray | None = None
               ) -> tuple[np.ndarray, RenderInfo]:
        """The display chain (PS3.3 C.11) and normalization; warns when the image comes out blank.

        ``out``: a buffer of the image's shape and dtype to write it into (see :func:`.render.render`).
        """
        tags = display_tags(header, self.config.decode.frame)
        try:
            image, info = render(decoded.array, tags, self.config.render, bits_allocated=header.bits_allocated,
                                 bits_stored=header.bits_stored, signed=header.signed, clip=header.encapsulated,
                                 out=out)
        except RenderError as exc:
            raise UnsupportedImageError(f"{header.path}: {exc}", path=header.path) from None
        if info.blank:
            warnings.warn(f"{header.path}: every pixel renders to the same value ({info.voi}, normalize="
                          f"{self.config.render.normalize!r}): the image is blank", RenderWarning, stacklevel=3)
        return image, info

    def resize(self, image: np.ndarray, geom: Geometry, reduce: int = 0) -> np.ndarray:
        """Resize to the planned geometry (``reduce``: the image is a ``2**-reduce`` decode)."""
        return resize(image, geom, pad_value=self.config.geometry.pad_value, reduce=reduce)

    def read(self, source: Path | Location | Source | Header) -> XrayImage:
        """Run every stage on one file (or on a header already read)."""
        header = source if isinstance(source, Header) else self.header(source)
        geom = self.plan(header)
        decoded = self.decode(header, geom)
        shape = decoded.array.shape
        # The full-resolution image is an intermediate when the resize resamples it: render it into a reused
        # buffer instead of fresh memory (a few thousand page faults per image otherwise).
        with scratch_for(self.config, geom, shape, decoded.reduce) as out:
            image, info = self.render(header, decoded, out=out)
            pixels = self.resize(image, geom, decoded.reduce)
        meta = XrayMeta(
            path=header.path,
            sop_instance_uid=header.tag_text("SOPInstanceUID"),
            study_instance_uid=header.tag_text("StudyInstanceUID"),
            series_instance_uid=header.tag_text("SeriesInstanceUID"),
            transfer_syntax=str(header.transfer_syntax),
            decoder=decoded.backend,
            reduce=decoded.reduce,
            frame=self.config.decode.frame,
            bits_stored=header.bits_stored,
            photometric=header.photometric,
            modality_lut=info.modality,
            voi=info.voi,
            inverted=info.inverted,
            dtype=self.config.render.dtype,
            geometry=geom,
        )
        return XrayImage(pixels, meta, header.identity)


#: The largest intermediate image kept for reuse (bytes): a 3000x3000 float32 render is 36 MB.
SCRATCH_BYTES = 64 << 20
#: How many such buffers a process keeps (a DataLoader worker reads on one thread; read-ahead threads beyond
#: this many render into fresh memory, so 32 read-ahead threads never hold 32 buffers).
SCRATCH_KEPT = 2


class _ScratchPool:
    """Reused buffers for the full-resolution render that the resize then reads into new memory (a fresh 5 MB
    image costs a few thousand page faults where the allocator has handed memory back to the system).  At most
    :data:`SCRATCH_KEPT` buffers are kept; a buffer is lent to one read at a time, so no two reads share one and
    no returned array shares any (the resize writes new memory whenever it resamples)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[np.ndarray] = []

    @contextmanager
    def lend(self, shape: tuple[int, ...], dtype: str) -> Iterator[np.ndarray | None]:
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if size > SCRATCH_BYTES:
            yield None
            return
        with self._lock:
            buf = self._free.pop() if self._free else None
        if buf is None or buf.size < size:
            buf = np.empty(size, np.uint8)
        try:
            yield buf[:size].view(dtype).reshape(shape)
        finally:
            with self._lock:
                if len(self._free) < SCRATCH_KEPT:
                    self._free.append(buf)


_SCRATCH = _ScratchPool()


@contextmanager
def scratch_for(config: PipelineConfig, geom: Geometry, shape: tuple[int, ...],
                reduce: int) -> Iterator[np.ndarray | None]:
    """A reused buffer to render a ``shape`` image into while the resize resamples it, else ``None``."""
    if not resamples(geom, shape, reduce):
        yield None
        return
    with _SCRATCH.lend(shape, config.render.dtype) as out:
        yield out


def load_xray(path: Path, size: int | tuple[int, int] | None = None, *, config: PipelineConfig | None = None,
              storage_options: Mapping[str, Any] | None = None, **options: Unpack[ShortOptions]) -> XrayImage:
    """Read, decode, render and resize one DICOM radiograph; return pixels and metadata.

    See :func:`read_xray` for the parameters.
    """
    return Pipeline(pipeline_config(config, size=size, **options), storage_options=storage_options).read(path)


def read_xray(path: Path, size: int | tuple[int, int] | None = None, *, config: PipelineConfig | None = None,
              storage_options: Mapping[str, Any] | None = None, **options: Unpack[ShortOptions]) -> np.ndarray:
    """Return a DICOM radiograph as a normalized 2-D array.

    Parameters
    ----------
    path : path-like or URL
        A DICOM file (preamble and file meta optional), or a URL read through
        fsspec (``s3://``, ``gs://``, ``az://``, ``https://``...; one GET).
    size : int or (height, width), optional
        Output size; ``None`` keeps full resolution.
    config : PipelineConfig
        Every other option (VOI index, polarity, decoder, size limit...); the
        keyword options below override its fields.
    **options
        The short-hand keywords of :func:`dicomxray.pipeline_config`, checked by
        type checkers (:class:`dicomxray.config.ShortOptions`): ``keep_ratio``
        (scale the longest side to ``size``, keep the aspect ratio),
        ``letterbox`` (keep the aspect ratio, pad to ``size x size``), ``dtype``
        (``"uint8"`` by default, ``"uint16"``, or ``"float32"`` in [0, 1]),
        ``normalize`` (``"minmax"`` by default as the classic recipe,
        ``"window"``, ``"percentile"``) and ``frame`` (of a multi-frame file,
        default 0).
    storage_options : mapping, optional
        For a URL: the fsspec filesystem's options (credentials, endpoint...),
        e.g. ``{"anon": True}`` for a public bucket.

    Raises
    ------
    DicomXrayError
        A subclass naming the file and what is wrong.
    """
    return load_xray(path, size, config=config, storage_options=storage_options, **options).pixels
