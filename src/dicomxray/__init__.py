"""dicomxray: DICOM chest X-rays to normalized arrays and PyTorch tensors, correctly and fast.

The public surface is what this module exports, plus the documented
``dicomxray.labels``, ``dicomxray.transforms`` and ``dicomxray.testing``.
Modules whose name starts with an underscore are implementation.
``import dicomxray`` loads the pipeline only: not torch, the CLI or the tooling.
"""

from __future__ import annotations

from ._cache import CachedPipeline, CacheStats, XrayCache
from ._geometry import Geometry, boxes_to_original, boxes_to_output
from ._source import FileIdentity
from .config import CacheConfig, DecodeConfig, GeometryConfig, PipelineConfig, RenderConfig, pipeline_config
from .decode import capability_report
from .errors import (
    CacheError,
    CorruptPixelDataError,
    DecoderUnavailableError,
    DicomXrayError,
    DicomXrayWarning,
    FrameIndexError,
    ImageTooLargeError,
    LabelFormatError,
    MissingExtraError,
    MissingPixelDataError,
    NotDicomError,
    RemoteAccessError,
    RemoteSourceError,
    SourceChangedError,
    SourceFileNotFoundError,
    SourceReadError,
    UnsupportedImageError,
)
from .index import find_dicoms
from .jobs import ExportResult, build_cache, export_folder
from .pipeline import Pipeline, XrayImage, XrayMeta, load_xray, read_xray

__version__ = "0.2.0"

__all__ = [
    "CacheConfig",
    "CacheError",
    "CacheStats",
    "CachedPipeline",
    "CorruptPixelDataError",
    "DecodeConfig",
    "DecoderUnavailableError",
    "DicomXrayDataset",
    "DicomXrayError",
    "DicomXrayWarning",
    "FrameIndexError",
    "ExportResult",
    "FileIdentity",
    "Geometry",
    "GeometryConfig",
    "ImageTooLargeError",
    "LabelFormatError",
    "MissingExtraError",
    "MissingPixelDataError",
    "NotDicomError",
    "Pipeline",
    "PipelineConfig",
    "RemoteAccessError",
    "RemoteSourceError",
    "RenderConfig",
    "SourceChangedError",
    "SourceFileNotFoundError",
    "SourceReadError",
    "UnsupportedImageError",
    "XrayCache",
    "XrayImage",
    "XrayMeta",
    "__version__",
    "boxes_to_original",
    "boxes_to_output",
    "build_cache",
    "capability_report",
    "export_folder",
    "find_dicoms",
    "load_xray",
    "pipeline_config",
    "read_xray",
]


def __getattr__(name: str) -> object:
    # torch is imported only when the dataset is used, so read_xray works without it.
    if name == "DicomXrayDataset":
        from .dataset import DicomXrayDataset

        return DicomXrayDataset
    raise AttributeError(f"module 'dicomxray' has no attribute {name!r}")
