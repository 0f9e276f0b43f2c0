"""The named steps :class:`dicomxray.DicomXrayDataset` is built from: options checked, files found (a folder walked
or a bucket listed), the listing kept for ``remote_identity="auto"``/``"listing"``, files without labels dropped, the reader
made.  Each is a function of its inputs, usable and testable on its own."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ..cache import CachedPipeline, XrayCache
from ..config import TRAINING_SIZE, CacheConfig, PipelineConfig, pipeline_config
from ..dicom.sources import find_sources
from ..errors import SourceFileNotFoundError
from ..io.source import FileIdentity, Opener, is_url, local_path
from ..labels.base import LabelSource, labelled_only
from ..pixels.pipeline import Pipeline, XrayImage
from .epochs import EpochListing

__all__ = ["FileList", "ImageDType", "OnError", "Reader", "RemoteIdentity", "check_options", "check_transform",
           "find_files", "keep_labelled", "listing_of", "make_reader"]

OnError = Literal["raise", "skip"]
RemoteIdentity = Literal["auto", "request", "listing"]
ImageDType = Literal["float32", "uint8"]


class Reader(Protocol):
    """What the dataset reads images with: a :class:`Pipeline` or a :class:`CachedPipeline`."""

    @property
    def config(self) -> PipelineConfig: ...

    def read(self, path: str) -> XrayImage: ...


@dataclass(frozen=True)
class FileList:
    """What :func:`find_files` found: ``root`` as given (a ``Path``, a URL or ``None``), the files in order
    (``Path`` or URL strings) and the identities a bucket listing gave (empty for a folder)."""

    root: Any
    paths: list[Any]
    identities: dict[str, FileIdentity] = field(default_factory=dict, repr=False)

    @property
    def remote(self) -> bool:
        """Whether any file is behind a URL (then a batch's reads overlap in threads: latency, not CPU, bounds
        them; a local read is CPU-bound and stays in the caller's thread)."""
        return any(isinstance(p, str) for p in self.paths)


def check_options(*, on_error: str, channels: int, image_dtype: str, remote_identity: str, root: Any, files: Any,
                  pipeline: Any, config: Any, size: Any, cache: Any) -> None:
    """Refuse inconsistent or unknown constructor options (``ValueError`` naming the option)."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if image_dtype not in ("float32", "uint8"):
        raise ValueError(f"image_dtype must be 'float32' or 'uint8', got {image_dtype!r}")
    if pipeline is not None and (config is not None or size is not None or cache is not None):
        raise ValueError("give either pipeline= or config=/size=/cache=, not both")
    if root is None and files is None:
        raise ValueError("give root or files")
    if remote_identity not in ("auto", "request", "listing"):
        raise ValueError(f"remote_identity must be 'auto', 'request' or 'listing', got {remote_identity!r}")


def find_files(root: str | os.PathLike[str] | None, files: Sequence[str | os.PathLike[str]] | None,
               storage_options: Mapping[str, Any] | None, labels: LabelSource | None = None) -> FileList:
    """Discovery: ``files`` as given, else the files ``labels.files(root)`` lists (a source whose metadata names
    its files, so 377,000 of them are not sniffed one by one), else a folder walked (sorted) or a URL prefix
    listed once.

    Raises
    ------
    SourceFileNotFoundError
        The root does not exist or holds no DICOM file (:func:`dicomxray.dicom.sources.find_sources`).
    """
    listed = getattr(labels, "files", None)
    if files is None and root is not None and callable(listed):
        files = listed(root)  # None: the source leaves discovery to the walk
    if files is not None:  # the user's (or the source's) list: each file classified as given
        base = (str(root) if is_url(root) else Path(os.path.expanduser(local_path(root)))) if root is not None else None
        return FileList(base, [f if is_url(f) else Path(f) for f in files])
    found = find_sources(root, storage_options)  # type: ignore[arg-type]  # check_options refuses neither-nor
    return FileList(found.root, found.files, found.identities)


def listing_of(found: FileList, remote_identity: RemoteIdentity,
               storage_options: Mapping[str, Any] | None) -> EpochListing | None:
    """The bucket listing cached reads are keyed by, renewed once per pass, over a URL root, else ``None``:
    ``"listing"`` keeps every listed identity; ``"auto"`` only those carrying a strong version token (none over a
    plain HTTP root, whose reads are then each checked by a request, as with ``"request"``)."""
    if remote_identity == "request" or not is_url(found.root):
        return None
    auto = remote_identity == "auto"
    if auto and not any(ident.versioned for ident in found.identities.values()):
        return None
    return EpochListing(found.root, storage_options, found.identities, versioned_only=auto)


def keep_labelled(found: FileList, labels: LabelSource | None) -> list[Any]:
    """The files that ``labels`` labels (all of them without labels); URLs kept as given (``Path`` would fold
    ``s3://`` into ``s3:/``).

    Raises
    ------
    SourceFileNotFoundError
        None of the files is labelled.
    """
    if labels is None:
        return found.paths
    urls = {str(Path(p)): p for p in found.paths if is_url(p)}
    kept = [urls.get(str(p), p) for p in labelled_only(found.paths, labels)]
    if not kept:
        raise SourceFileNotFoundError(f"{found.root}: none of the DICOM files matches a labelled image id",
                                      path=str(found.root))
    return kept


def check_transform(labels: LabelSource | None, transform: Callable[..., Any] | None, *, masks: bool = False) -> None:
    """With labels, an albumentations transform must move the boxes too (``ValueError`` otherwise), unless the
    source has masks (``masks``): a mask-only source's boxes are taken around its instances after augmentation, and
    a sample that does have boxes is refused when it is read."""
    processors = getattr(transform, "processors", None)  # albumentations' Compose: a third-party attribute
    if labels is not None and not masks and isinstance(processors, dict) and "bboxes" not in processors:
        raise ValueError(
            "with labels, an albumentations transform must move the boxes too: build it with "
            "bbox_params=dicomxray.transforms.bbox_params() (train_transforms/val_transforms do)"
        )


def make_reader(*, pipeline: Reader | None, config: PipelineConfig | None, size: int | tuple[int, int] | None,
                cache: str | os.PathLike[str] | CacheConfig | None, opener: Opener) -> Reader:
    """``pipeline`` as given, else a :class:`Pipeline` of ``config`` (``size`` overriding it, 512 by default)
    reading through ``opener``, behind the disk cache when ``cache`` is given."""
    if pipeline is not None:
        return pipeline
    if size is None and (config is None or config.geometry.size is None):
        size = TRAINING_SIZE
    plain = Pipeline(pipeline_config(config, size=size), opener=opener)
    return CachedPipeline(plain, XrayCache(CacheConfig.of(cache))) if cache is not None else plain


def reseed(transform: Any, seeded: int | None) -> int:
    """Seed ``transform`` from torch's per-worker seed once per worker (or once in-process): the seed now, which
    the caller keeps and hands back as ``seeded`` (nothing is done while it is unchanged)."""
    import torch

    seed = torch.initial_seed()
    if seed != seeded:
        setter = getattr(transform, "set_random_seed", None)
        if setter is not None:
            setter(seed % 2**32)
    return seed
