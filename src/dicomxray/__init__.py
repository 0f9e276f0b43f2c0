"""dicomxray: DICOM chest X-rays to normalized arrays and PyTorch tensors, correctly and fast."""

from __future__ import annotations

from ._export import ExportResult, export_folder
from .config import DecodeConfig, GeometryConfig, PipelineConfig, RenderConfig
from .decode import capability_report
from .errors import (
    CacheError,
    CorruptPixelDataError,
    DecoderUnavailableError,
    DicomXrayError,
    ImageTooLargeError,
    MissingPixelDataError,
    NotDicomError,
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
    "DecodeConfig",
    "DecoderUnavailableError",
    "DicomXrayError",
    "ExportResult",
    "Geometry",
    "GeometryConfig",
    "ImageTooLargeError",
    "MissingPixelDataError",
    "NotDicomError",
    "PipelineConfig",
    "RenderConfig",
    "SourceFileNotFoundError",
    "UnsupportedImageError",
    "XrayImage",
    "XrayMeta",
    "__version__",
    "boxes_to_original",
    "boxes_to_output",
    "capability_report",
    "export_folder",
    "find_dicoms",
    "load_xray",
    "make_config",
    "read_xray",
]
