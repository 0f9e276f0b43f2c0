"""The PyTorch side: everything here imports torch (and albumentations when a transform asks for it).

* :class:`DicomXrayDataset`: a folder, URL prefix or index selection as a map-style dataset.
* :class:`PrefetchSampler`: reads the coming samples' bytes ahead, in threads, to hide object-store latency.
"""

from __future__ import annotations

from .dataset import DicomXrayDataset
from .prefetch import PrefetchConfig, PrefetchSampler

__all__ = ["DicomXrayDataset", "PrefetchConfig", "PrefetchSampler"]
