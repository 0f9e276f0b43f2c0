"""dicomxray: DICOM chest X-rays to normalized arrays and PyTorch tensors, correctly and fast."""

from __future__ import annotations

from ._jobs import ExportResult, build_cache, export_folder
from .cache import CacheStats, XrayCache
from .config import DecodeConfig, GeometryConfig, PipelineConfig, RenderConfig
from .decode import capability_report
from .errors import (
    CacheError,
    CorruptPixelDataError,
    DecoderUnavailableError,
    DicomXrayError,
    DicomXrayWarning,
    ImageTooLargeError,
    MissingPixelDataError,
    NotDicomError,
    SourceChangedError,
    SourceFileNotFoundError,
    UnsupportedImageError,
)
from .geometry import Geometry, boxes_to_original, boxes_to_output
from .index import find_dicoms
from .xray import XrayImage, XrayMeta, load_xray, make_config, read_xray

__version__ = "0.1.0"

__all__ = [
    "CacheError",
    "CorruptPixelDataError",
    "CacheStats",
    "DecodeConfig",
    "DecoderUnavailableError",
    "DicomXrayDataset",
    "DicomXrayError",
    "DicomXrayWarning",
    "ExportResult",
    "Geometry",
    "GeometryConfig",
    "ImageTooLargeError",
    "MissingPixelDataError",
    "NotDicomError",
    "PipelineConfig",
    "RenderConfig",
    "SourceChangedError",
    "SourceFileNotFoundError",
    "UnsupportedImageError",
    "XrayCache",
    "XrayImage",
    "XrayMeta",
    "__version__",
    "boxes_to_original",
    "build_cache",
    "boxes_to_output",
    "capability_report",
    "export_folder",
    "find_dicoms",
    "load_xray",
    "make_config",
    "read_xray",
]


def __getattr__(name: str) -> object:
    # torch is imported only when the dataset is used, so read_xray works without it.
    if name == "DicomXrayDataset":
        from .dataset import DicomXrayDataset

        return DicomXrayDataset
    raise AttributeError(f"module 'dicomxray' has no attribute {name!r}")
