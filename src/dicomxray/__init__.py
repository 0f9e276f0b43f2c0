"""dicomxray: DICOM chest X-rays to normalized arrays and PyTorch tensors, correctly and fast.

The public surface is what this module exports, plus the documented
``dicomxray.labels``, ``dicomxray.transforms`` and ``dicomxray.testing``.
Modules whose name starts with an underscore are implementation.
``import dicomxray`` loads the configs, the errors and the pipeline; the cache, the index, the jobs and
the PyTorch side load on first use of one of their names (a test checks the module set).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _deprecated
from .config import CacheConfig, DecodeConfig, GeometryConfig, PipelineConfig, RenderConfig, pipeline_config
from .errors import (
    CacheError,
    CacheWarning,
    CorruptPixelDataError,
    DecoderUnavailableError,
    DicomXrayError,
    DicomXrayWarning,
    FrameIndexError,
    ImageTooLargeError,
    IndexWarning,
    LabelFormatError,
    LabelWarning,
    LoaderWarning,
    MissingExtraError,
    MissingPixelDataError,
    NotDicomError,
    RemoteAccessError,
    RemoteSourceError,
    RenderWarning,
    SkipWarning,
    SourceChangedError,
    SourceFileNotFoundError,
    SourceReadError,
    UnsupportedImageError,
)
from .io.identity import FileIdentity
from .pixels.decode import capability_report
from .pixels.geometry import Geometry, boxes_to_original, boxes_to_output
from .pixels.pipeline import Pipeline, XrayImage, XrayMeta, load_xray, read_xray

__version__ = "0.3.0"  # the one source of the version: pyproject.toml reads it from here

_deprecated.install()  # old module names (dicomxray.dataset, ...) keep importing, with a warning

__all__ = [
    "boxes_to_original",
    "boxes_to_output",
    "build_cache",
    "build_index",
    "CacheConfig",
    "CachedPipeline",
    "CacheError",
    "CacheStats",
    "CacheWarning",
    "capability_report",
    "connect",
    "CorruptPixelDataError",
    "DecodeConfig",
    "DecoderUnavailableError",
    "DicomXrayDataset",
    "DicomXrayError",
    "DicomXrayWarning",
    "export_folder",
    "ExportResult",
    "FileIdentity",
    "find_dicoms",
    "FrameIndexError",
    "Geometry",
    "GeometryConfig",
    "ImageTooLargeError",
    "IndexWarning",
    "LabelFormatError",
    "LabelWarning",
    "load_xray",
    "LoaderWarning",
    "MissingExtraError",
    "MissingPixelDataError",
    "NodeAffineSampler",
    "NotDicomError",
    "Pipeline",
    "pipeline_config",
    "PipelineConfig",
    "PrefetchSampler",
    "read_index",
    "read_xray",
    "RemoteAccessError",
    "RemoteSourceError",
    "RenderConfig",
    "RenderWarning",
    "select",
    "SkipWarning",
    "SourceChangedError",
    "SourceFileNotFoundError",
    "SourceReadError",
    "UnsupportedImageError",
    "XrayCache",
    "XrayImage",
    "XrayMeta",
    "__version__",
]


if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from .cache import CachedPipeline, CacheStats, XrayCache
    from .data import DicomXrayDataset, NodeAffineSampler, PrefetchSampler
    from .dicom.discover import find_dicoms
    from .index import build_index, read_index, select
    from .jobs import ExportResult, build_cache, connect, export_folder

#: Names loaded on first use, and the module each lives in: the cache, the jobs, the index and the
#: PyTorch side cost imports (a process pool, pyarrow, Dask, torch) that ``read_xray`` never needs.
_LAZY = {
    "CachedPipeline": "cache",
    "CacheStats": "cache",
    "XrayCache": "cache",
    "find_dicoms": "dicom.discover",
    "ExportResult": "jobs",
    "build_cache": "jobs",
    "export_folder": "jobs",
    "connect": "jobs",
    "build_index": "index",
    "read_index": "index",
    "select": "index",
    "DicomXrayDataset": "data",
    "PrefetchSampler": "data",
    "NodeAffineSampler": "data",
}


def __getattr__(name: str) -> Any:
    if name == "make_config":  # 0.1's name
        _deprecated.warn("dicomxray.make_config", "dicomxray.pipeline_config")
        return pipeline_config
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dicomxray' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
