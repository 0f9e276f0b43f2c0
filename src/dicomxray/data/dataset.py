"""``DicomXrayDataset``: files -> pipeline (cached or not) -> labels -> transforms -> tensors."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .._deprecated import dataset_options
from ..cache import CachedPipeline, XrayCache
from ..config import CacheConfig, PipelineConfig
from ..errors import DicomXrayError, SkipWarning, SourceFileNotFoundError
from ..index import image_id
from ..io.source import Opener
from ..labels.base import LabelSource, Target
from ..pixels.pipeline import XrayImage
from ..transforms import to_albumentations_dtype
from .batches import batch_samples, ready_collate
from .loader import make_loader, plan_mismatch, warn_mismatch
from .prefetch import Ahead, PrefetchConfig, Prefetcher
from .samples import collate, to_tensor
from .skiplog import Failures, SkipLog, substitutes
from .steps import (
    ImageDType,
    OnError,
    Reader,
    RemoteIdentity,
    check_options,
    check_transform,
    find_files,
    keep_labelled,
    listing_of,
    make_reader,
    reseed,
)
from .targets import sample_targets, tasks_of

__all__ = ["DicomXrayDataset", "Reader"]


class DicomXrayDataset(Dataset):
    """DICOM radiographs under ``root`` as PyTorch samples.

    Each sample is a dict:

    * ``image``: float32 tensor ``C x H x W`` in [0, 1] (``channels`` = 1 or 3);
    * ``meta``: path, SOP/Study/Series Instance UIDs, ``original_size`` (H, W), ``geometry`` (one float64
      record: ``Geometry.from_record(meta["geometry"])`` is what :func:`dicomxray.boxes_to_original` needs),
      ``index``;
    * with ``labels``: ``boxes`` (``N x 4`` float32, xyxy in output pixels,
      after augmentation; a box left without area is dropped with its label), ``labels`` (``N`` int64, >= 1;
      torchvision's detection names) and ``image_label`` (int64; the study class for SIIM, -1 when unknown);
      ``image_labels`` (``K`` float32, NaN unknown) when the source names ``multilabel_classes``; ``mask``
      (``1 x H x W`` uint8 0/1, the union) and ``masks`` (``N x H x W`` instances, each with its box in
      ``boxes``) when it has masks (docs/guide/tasks.md).

    Parameters
    ----------
    root : path-like or URL
        Folder searched recursively for DICOM files (sorted), or ignored when
        ``files`` is given; or a URL prefix (``s3://bucket/train``, ``gs://``,
        ``az://``, ``https://``...) listed through fsspec.
    config : PipelineConfig, optional
        Every pipeline option (build one with :func:`dicomxray.pipeline_config`);
        ``size`` overrides its output size.  Default: 512 x 512 uint8.
    pipeline : Pipeline or CachedPipeline, optional
        A ready pipeline instead of ``config`` (and ``cache``).
    size : int or (height, width), optional
        Shorthand for the output size (default 512 when ``config`` gives none).
    cache : path-like or CacheConfig, optional
        Turn on the on-disk cache of rendered arrays (:class:`dicomxray.XrayCache`).
    labels : LabelSource, optional
        e.g. :class:`dicomxray.labels.SiimCovid`; only labelled files are kept.
    channels : int
        1, or 3 to repeat the grey channel for ImageNet backbones.
    image_dtype : {"float32", "uint8"}
        ``float32`` in [0, 1] (default), or ``uint8``: 4x less to copy between processes and to the GPU;
        normalize there with :func:`dicomxray.transforms.to_float` (``x.float().div_(255)``).
    in_memory : bool
        Keep every image once read (a RAM tier in front of the cache, MONAI ``CacheDataset``-style): later
        epochs skip even the cache's identity check, so a file edited during training is not re-read
        until the dataset is rebuilt.  :meth:`preload` fills it before the workers start.
    transform : callable, optional
        albumentations-style ``transform(image=..., bboxes=..., labels=..., mask=..., masks=...)``
        returning a dict (see :func:`dicomxray.transforms.train_transforms`); ``mask``/``masks`` only for a
        source with masks (which may pass a transform without ``bbox_params``).
        Re-seeded per DataLoader worker from ``torch.initial_seed()``.
    target_transform : callable, optional
        Applied to the target dict (every field above but ``image`` and ``meta``).
    on_error : {"raise", "skip"}
        ``raise`` re-raises the library's error (naming the file); ``skip``
        warns once per bad file per pass (per worker), records the file (:meth:`skipped` lists them, from every
        worker) and returns a readable sample drawn from the index and :meth:`set_epoch`'s epoch instead:
        deterministic, spread over the readable files, never ``None``, so batch sizes and the default collate are
        unchanged.
    files : sequence of paths or URLs, optional
        The files to use, in this order (a URL without a listing is identified by a HEAD per cached read).
    storage_options : mapping, optional
        For URLs: the fsspec filesystem's options (credentials, ``endpoint_url``, ``anon``...).
    remote_identity : {"auto", "request", "listing"}
        How a cached read knows an object's version.  ``auto`` (the default) takes it from a listing of
        ``root`` where the listing carries a strong version token (S3, GCS, Azure: ETag, version id,
        generation), and asks the store per read where it does not (plain HTTP): a cached read then costs
        no client, connection or request in any DataLoader worker, fresh or persistent.  The listing is
        renewed once per pass (each pass start: a sampler asking the length, or a
        :class:`dicomxray.data.prefetch.PrefetchSampler` given ``dataset=``; one request per 1,000
        objects, made once for every worker), so an object overwritten during a pass is seen by the next
        one (:mod:`dicomxray.data.epochs`).  ``request`` asks the store at every cached read (one HEAD:
        never stale, like a stat per local read); ``listing`` is ``auto`` that also trusts listed
        identities without a version token (size and Last-Modified).  Either way a miss's GET carries its
        own identity, so a version read is never stored under another's key.
    prefetch : PrefetchConfig or int, optional
        Threads (and memory budget) reading ahead what a :class:`dicomxray.data.prefetch.PrefetchSampler`
        announces; default ``PrefetchConfig()`` (32 threads, 256 MiB per process); 0 turns it off.
        Without that sampler samples are read one at a time.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        config: PipelineConfig | None = None,
        pipeline: Reader | None = None,
        size: int | tuple[int, int] | None = None,
        cache: str | os.PathLike[str] | CacheConfig | None = None,
        labels: LabelSource | None = None,
        channels: int = 1,
        image_dtype: ImageDType = "float32",
        in_memory: bool = False,
        transform: Callable[..., dict[str, Any]] | None = None,
        target_transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        on_error: OnError = "raise",
        files: Sequence[str | os.PathLike[str]] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        remote_identity: RemoteIdentity = "auto",
        prefetch: PrefetchConfig | int | None = None,
        **deprecated: Any,
    ) -> None:
        if deprecated:  # 0.1's cache_dir=, cache_identity=, keep_ratio=, letterbox=, dtype= (warned; removed in 0.4)
            config, cache = dataset_options(deprecated, config=config, cache=cache, size=size)
        check_options(on_error=on_error, channels=channels, image_dtype=image_dtype, remote_identity=remote_identity,
                      root=root, files=files, pipeline=pipeline, config=config, size=size, cache=cache)
        found = find_files(root, files, storage_options, labels)
        listing = listing_of(found, remote_identity, storage_options)
        paths = keep_labelled(found, labels)
        self.tasks = tasks_of(labels, [image_id(p) for p in paths[:64]])
        check_transform(labels, transform, masks=self.tasks.masks)
        self.root = found.root
        self.files: list[str] = [str(p) for p in paths]
        self.labels = labels
        self.pipeline = make_reader(pipeline=pipeline, config=config, size=size, cache=cache,
                                    opener=Opener(storage_options, listing))
        if image_dtype == "uint8" and self.pipeline.config.render.dtype != "uint8":
            raise ValueError(f"image_dtype='uint8' needs a uint8 render, the config renders {self.pipeline.config.render.dtype}")
        self._listing = listing
        self.channels = channels
        self.image_dtype = image_dtype
        self.in_memory = in_memory
        self._images: dict[int, XrayImage] = {}
        if not isinstance(prefetch, PrefetchConfig):
            prefetch = PrefetchConfig() if prefetch is None else PrefetchConfig(threads=prefetch)
        self._prefetch: Prefetcher[XrayImage] = Prefetcher(prefetch)
        self.transform = transform
        self.target_transform = target_transform
        self.on_error = on_error
        self._skip_log = SkipLog(self) if on_error == "skip" else None
        self._failures = Failures(len(self.files))
        self._plan_checked = False
        self._concurrent = found.remote
        self._seeded: int | None = None
        self._warm: set[int] = set()
        self.epoch = 0

    @classmethod
    def from_index(
        cls, index: str | os.PathLike[str], where: str | Callable[[dict[str, Any]], bool] | None = None, *,
        root: str | os.PathLike[str] | None = None, **kwargs: Any,
    ) -> DicomXrayDataset:
        """The files of a header index (``dicomxray index``) that match ``where``, without walking the tree.

        ``where`` is a pandas query on the index's columns (e.g. ``"ViewPosition in ['PA', 'AP'] and
        decodable"``) or a callable on a row dict; unreadable files are left out.  Only the columns the
        query names are loaded, so a 1,000,000-file index starts in well under a second (see
        ``benchmarks/bench_index.py``).  Other keywords are those of the constructor.
        """
        from ..index import select_files  # checks each selected file against its row (IndexWarning when changed)

        rows = select_files(index, where, root=root, storage_options=kwargs.get("storage_options"))
        return cls(root if root is not None else rows.attrs.get("dicomxray", {}).get("root"),
                   files=rows["file"].tolist(), **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        """What a spawned worker or a DDP rank receives: cheap, without the RAM tier's images (forked
        workers inherit a tier filled by :meth:`preload` instead)."""
        state = dict(self.__dict__)
        state["_images"] = {}
        return state

    @property
    def config(self) -> PipelineConfig:
        return self.pipeline.config

    @property
    def cache(self) -> XrayCache | None:
        return self.pipeline.cache if isinstance(self.pipeline, CachedPipeline) else None

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}", f"    Number of files: {len(self.files)}", f"    Root: {self.root}",
                 f"    Pipeline: {self.pipeline!r}"]
        if self.labels is not None:
            lines.append(f"    Labels: {type(self.labels).__name__}")
        if self.transform is not None:
            lines.append(f"    Transform: {type(self.transform).__name__}")
        lines.append(f"    on_error: {self.on_error}")
        return "\n".join(lines)

    def __len__(self) -> int:
        if self._listing is not None:  # every PyTorch sampler asks the length as its pass begins
            self._listing.begin()
        return len(self.files)

    # ----------------------------------------------------------------- steps
    def load(self, index: int) -> XrayImage:
        """The rendered, resized image of ``index`` (from the RAM tier, read ahead, the disk cache or the
        pipeline)."""
        if not self.in_memory:
            return self._prefetch.take(index, self._read)
        image = self._images.get(index)
        if image is None:
            image = self._images[index] = self._prefetch.take(index, self._read)
            image.pixels.setflags(write=False)  # shared by every later access: handed out as copies
        return image

    def _read(self, index: int) -> XrayImage:
        return self.pipeline.read(self.files[index])

    def start_epoch(self, token: int) -> None:
        """A pass over the data begins (:class:`dicomxray.data.prefetch.PrefetchSampler` given ``dataset=``, in the
        main process): with ``remote_identity="auto"`` or ``"listing"`` the pass's bucket listing is published here,
        once for every worker of this process (made in the background while the last pass ended)."""
        if self._listing is not None:
            self._listing.begin(told=True)

    def epoch_ending(self) -> None:
        """The pass has handed out its last index: the next pass's listing starts in the background."""
        if self._listing is not None:
            self._listing.ending()

    def _announce(self, index: int) -> int:
        """Start reading what :class:`dicomxray.data.prefetch.PrefetchSampler` says comes next; the plain index."""
        epoch = index.epoch if isinstance(index, Ahead) else None
        if self._listing is not None:  # a new process or epoch loads the pass's listing
            self._listing.renew(epoch)
        self._failures.served(epoch)
        if isinstance(index, Ahead) and index.ahead:
            self._hint(index.ahead)
        return int(index)

    def _hint(self, indices: Iterable[int]) -> None:
        warm, tier, failed = self._warm, self._images, self._failures  # a hit read here (batches.py), in RAM, failed
        self._prefetch.hint([i for i in indices if i not in warm and i not in tier and i not in failed], self._read)

    def preload(self, *, progress: bool = True) -> DicomXrayDataset:
        """Fill the RAM tier (``in_memory=True``) now, in this process.

        Call it before the DataLoader starts its workers: forked workers then share the images (and the
        disk cache's page cache) instead of each filling a tier of its own.  Files that fail are left
        for ``__getitem__`` to raise or skip.
        """
        if not self.in_memory:
            raise ValueError("preload() fills the RAM tier: construct the dataset with in_memory=True")
        from tqdm import tqdm

        for index in tqdm(range(len(self)), desc="preload", unit="img", disable=not progress):
            try:
                self.load(index)
            except DicomXrayError:
                continue
        return self

    def target(self, index: int) -> Target | None:
        """Labels of ``index`` in original pixels (``None`` without labels)."""
        if self.labels is None:
            return None
        return self.labels.target(image_id(self.files[index]))

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._sample(*self._load_or_substitute(self._announce(index)))

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """A batch (PyTorch's fetcher hands over the whole batch): its files read at once in this process's
        read-ahead threads (URLs), cache hits in one pass into one tensor (:mod:`.batches`), the samples in order,
        each equal to :meth:`__getitem__`'s (its image a view of the batch's); errors and skips as there."""
        if not indices:
            return []
        if not self._plan_checked:
            self._plan_checked = True
            mismatch = plan_mismatch(indices, len(self))
            if mismatch is not None:
                warn_mismatch(mismatch)
        plain = []
        for n, i in enumerate(indices):
            if n == 0 or isinstance(i, Ahead):  # the first one renews the pass's listing in a new process or epoch
                plain.append(self._announce(i))
            else:
                self._failures.served(None)
                plain.append(int(i))
        if self._concurrent:  # URLs: the batch's requests overlap; local files read in order, in this thread
            self._hint(plain)
        return batch_samples(self, plain)

    def loader(self, *, batch_size: int, num_workers: int, sampler: Iterable[int] | None = None,
               shuffle: bool = False, **options: Any) -> DataLoader:
        """A DataLoader over this data set with a :class:`dicomxray.data.prefetch.PrefetchSampler` told the same
        ``batch_size`` and ``num_workers`` (so read-ahead reaches the worker that reads it), persistent workers
        by default, :func:`.batches.ready_collate` (images not copied); ``options`` are :func:`.loader.make_loader`'s."""
        options.setdefault("collate_fn", ready_collate)
        return make_loader(self, batch_size=batch_size, num_workers=num_workers, sampler=sampler, shuffle=shuffle,
                           **options)

    def _sample(self, image: XrayImage, index: int) -> dict[str, Any]:
        pixels = image.pixels
        sample: dict[str, Any] = {}
        if self.labels is not None:
            if self.transform is not None:
                self._maybe_reseed()
            pixels, tgt = sample_targets(pixels, image.meta.geometry, self.target(index), self.tasks, self.transform,
                                         self.files[index])
            sample.update(self.target_transform(tgt) if self.target_transform else tgt)
        elif self.transform is not None:
            self._maybe_reseed()
            arr = np.asarray(pixels)
            pixels = self.transform(image=to_albumentations_dtype(arr if arr.flags.writeable else arr.copy()),
                                    bboxes=np.zeros((0, 4), np.float32), labels=np.zeros((0,), np.int64))["image"]
        sample["image"] = to_tensor(pixels, self.image_dtype, self.channels)
        sample["meta"] = self._meta(index, image)
        return sample

    def _meta(self, index: int, image: XrayImage) -> dict[str, Any]:
        meta = dict(image.meta.record)  # computed once per image; a shallow copy and two zero-copy wraps per sample
        meta["index"] = index
        meta["original_size"] = torch.from_numpy(meta["original_size"])
        meta["geometry"] = torch.from_numpy(meta["geometry"])
        return meta

    def _maybe_reseed(self) -> None:
        self._seeded = reseed(self.transform, self._seeded)

    # -------------------------------------------------------------- errors
    def _load_or_substitute(self, index: int) -> tuple[XrayImage, int]:
        """The image of ``index``; under ``on_error="skip"`` a failed one (warned once per pass in this process) is
        replaced by a readable index drawn from ``index`` and :attr:`epoch` (:func:`.skiplog.substitutes`): the same
        on every run and worker, spread over the readable files, so batches keep their size."""
        try:
            return self._try(index), index
        except DicomXrayError:
            if self.on_error == "raise":
                raise
        for i in substitutes(index, self.epoch, len(self.files)):
            try:
                return self._try(i), i
            except DicomXrayError:
                continue
        raise SourceFileNotFoundError(f"{self.root}: no file of the data set could be read (see skipped())",
                                      path=str(self.root))

    def _try(self, index: int) -> XrayImage:
        """``load(index)``, or the error it failed with earlier in this pass; a new failure warned and recorded."""
        known = self._failures.known(index) if self.on_error == "skip" else None
        if known is not None:
            raise known
        try:
            return self.load(index)
        except DicomXrayError as exc:
            if self.on_error == "skip":
                self._failures.remember(index, exc)
                warnings.warn(f"dicomxray: skipping {exc}; a substitute sample takes its place", SkipWarning,
                              stacklevel=4)
                if self._skip_log is not None:
                    self._skip_log.record(self.files[index], exc)
            raise

    def set_epoch(self, epoch: int) -> None:
        """The pass about to start (as on torch's ``DistributedSampler``): ``on_error="skip"`` draws each pass's
        substitutes anew.  Reaches DataLoader workers started afterwards (not persistent ones already running)."""
        self.epoch = int(epoch)

    def skipped(self) -> list[tuple[str, str]]:
        """Files skipped so far by any worker, as ``(path, error)``, without repeats."""
        return self._skip_log.entries() if self._skip_log is not None else []

    # ------------------------------------------------------------- batching
    collate = staticmethod(collate)
