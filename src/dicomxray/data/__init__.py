"""The PyTorch side: everything here imports torch (and albumentations when a transform asks for it).

* :class:`DicomXrayDataset`: a folder, URL prefix or index selection as a map-style dataset.
* :class:`PrefetchSampler`: reads the coming samples' bytes ahead, in threads, to hide object-store latency.
* :class:`NodeAffineSampler`: a distributed sampler that keeps each node on its shard, so node-local caches hit.
* :func:`masks_to_original_batch`: a batch's predicted masks on each image's own pixels (for submissions).
"""

from __future__ import annotations

from .dataset import DicomXrayDataset
from .nodes import NodeAffineSampler
from .prefetch import PrefetchConfig, PrefetchSampler
from .targets import masks_to_original_batch

__all__ = ["DicomXrayDataset", "NodeAffineSampler", "PrefetchConfig", "PrefetchSampler", "masks_to_original_batch"]
