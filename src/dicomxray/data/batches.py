"""A batch read at once: the cache hits of a batch read in one pass into one allocation, the images converted
together, the samples views of one ``B x C x H x W`` tensor.

:meth:`dicomxray.DicomXrayDataset.__getitems__` hands its indices here.  The result is what PyTorch's fetcher
expects, one sample dict per index, each built by the dataset's own per-sample step (targets, masks, meta,
``target_transform``), so a batch equals the samples read one at a time, field for field.  What is shared is
the image memory: ``sample["image"]`` of the samples of one batch are consecutive views of one tensor, so
:func:`ready_collate` (what :meth:`~dicomxray.DicomXrayDataset.loader` collates with) hands that tensor on
without the copy a stack makes, and a worker process allocates it in shared memory, where the DataLoader's
transfer finds it.  A plain ``DataLoader`` and its default collate work unchanged (they stack the views).

Without labels or transform the samples are built here for the whole batch: ``meta``'s tensors are views of one
``B x ...`` tensor per field, which :func:`ready_collate` hands on too.  Outside a worker's shared memory the
batch's buffers are written again once nothing of the batch they held is alive (no tensor, array or storage of
it: :func:`_reused`), instead of fresh pages the kernel zeroes and faults in at every batch.

With a ``transform`` the images are still read in one pass; the transform runs per sample, as before.  Where
the output shape is not fixed by the configuration (``keep_ratio``, full resolution) or an image differs from
it, samples are built one at a time.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate, get_worker_info

from ..cache import CachedPipeline
from ..config import PipelineConfig
from ..errors import DicomXrayError
from ..io.source import Location, locate
from ..pixels.pipeline import XrayImage
from .samples import _ready_batch, stack_ready, to_tensor

__all__ = ["batch_samples", "output_shape", "ready_collate", "stack_ready"]

_SENDS_AS_IS = "_dicomxray_ready_collate"  # set on a worker's data set once ready_collate has seen its batches


def output_shape(config: PipelineConfig) -> tuple[int, int] | None:
    """The ``(height, width)`` every image of ``config`` has (``square`` and ``letterbox``), or ``None`` where
    it depends on the image (``keep_ratio``, full resolution)."""
    size, mode = config.geometry.size, config.geometry.mode
    if size is None or mode == "keep_ratio":
        return None
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def batch_samples(ds: Any, indices: Sequence[int]) -> list[dict[str, Any]]:
    """The samples of ``indices`` (plain ints, announced already) of ``ds`` (a
    :class:`~dicomxray.DicomXrayDataset`), in order; errors and ``on_error="skip"`` substitutes as one at a time."""
    shape = output_shape(ds.config)
    if shape is None:
        return [ds._sample(*ds._load_or_substitute(i)) for i in indices]
    render = np.dtype(ds.config.render.dtype)
    plain = ds.transform is None
    # In shared memory only where ready_collate sends the batch on as it is (a stack would copy it into more).
    send = get_worker_info() is not None and getattr(ds, _SENDS_AS_IS, False)
    shared = send and plain and render == _transport(ds.image_dtype) and ds.channels == 1
    tbuf = _empty((len(indices), *shape), render, shared=True) if shared else _reused(ds, (len(indices), *shape), render)
    buf = tbuf.numpy()
    views = list(buf)  # a hit is read into its view and handed back as that very array
    images = _read(ds, indices, views)
    if not plain or not all(im.pixels.shape == shape and im.pixels.dtype == render for im, _ in images):
        return [ds._sample(im, i) for im, i in images]
    for n, (image, _) in enumerate(images):
        if image.pixels is not views[n]:  # a miss, the RAM tier, a read ahead: copied into the batch
            views[n][...] = image.pixels
    batch = _convert(tbuf, ds.image_dtype, ds.channels, worker=send, out=None if send else _float_buffer(ds, tbuf))
    root = batch._base if batch._base is not None else batch
    root.dicomxray_batch = True  # type: ignore[attr-defined]  # what ready_collate may hand on as it is
    if ds.labels is None:  # nothing per sample beyond the image and its meta: built for the batch at once
        return _plain_samples(batch, images, shared=send)
    samples = []
    for n, (image, i) in enumerate(images):
        # The per-sample step on the batch's own converted pixels: its image is a view of the batch already.
        sample = ds._sample(XrayImage(batch[n, 0].numpy(), image.meta, image.identity), i)
        sample["image"] = batch[n]
        samples.append(sample)
    if ds.tasks.masks and ds.target_transform is None:
        _gather(ds, samples, "mask", shared=send)
    return samples


def _gather(ds: Any, samples: list[dict[str, Any]], key: str, *, shared: bool) -> None:
    """The samples' uint8 ``key`` tensors (one shape) copied into one ``B x ...`` tensor, each sample's field a
    view of it: what :func:`dicomxray.data.samples.collate` and :func:`ready_collate` hand on without a stack."""
    values = [s[key] for s in samples]
    first = values[0]
    if any(not isinstance(v, torch.Tensor) or v.shape != first.shape or v.dtype != torch.uint8 for v in values):
        return
    shape = (len(values), *first.shape)
    u8 = np.dtype(np.uint8)
    buf = _empty(shape, u8, shared=True) if shared else _reused(ds, shape, u8)
    torch.stack(values, out=buf)
    buf.dicomxray_batch = True  # type: ignore[attr-defined]
    for s, view in zip(samples, buf.unbind(0), strict=True):
        s[key] = view


def _plain_samples(batch: torch.Tensor, images: list[tuple[XrayImage, int]], *,
                   shared: bool) -> list[dict[str, Any]]:
    """The samples of a batch without labels or transform, equal to the per-sample step's: ``image`` and
    ``meta`` (the image's record, ``index``, its arrays as views of one ``B x ...`` tensor per field)."""
    records = [image.meta.record for image, _ in images]
    fields = {}
    for key in ("original_size", "geometry"):
        rows = [r[key] for r in records]
        if shared:
            t = _empty((len(rows), *rows[0].shape), rows[0].dtype, shared=True)
            np.stack(rows, out=t.numpy())
        else:
            t = torch.from_numpy(np.stack(rows))
        t.dicomxray_batch = True  # type: ignore[attr-defined]
        fields[key] = t.unbind(0)
    samples = []
    for n, ((_, i), record, image) in enumerate(zip(images, records, batch.unbind(0), strict=True)):
        meta = dict(record)
        meta["index"] = i
        meta["original_size"] = fields["original_size"][n]
        meta["geometry"] = fields["geometry"][n]
        samples.append({"image": image, "meta": meta})
    return samples


def _read(ds: Any, indices: Sequence[int], views: list[np.ndarray]) -> list[tuple[XrayImage, int]]:
    """Each index's image: a cache hit read straight into ``views[n]``; anything else (a miss, the RAM tier, a
    read ahead, a failure and its substitute) through the dataset's own path."""
    reader = ds.pipeline
    cache = reader.cache if isinstance(reader, CachedPipeline) else None
    direct = cache is not None and cache.identity == "stat" and not ds.in_memory and not ds._concurrent
    opener = reader.pipeline.opener if isinstance(reader, CachedPipeline) else None
    pending = getattr(ds._prefetch, "_pending", {})
    where = _located(ds) if direct else {}
    out: list[tuple[XrayImage, int]] = []
    for n, i in enumerate(indices):
        image = None
        if direct and cache is not None and i not in pending:
            try:
                image = cache.get(where.get(i) or where.setdefault(i, locate(ds.files[i])), reader.config,
                                  opener=opener, out=views[n])
            except DicomXrayError:  # the source is gone or unreadable: the dataset's path raises or skips it
                image = None
        got = (image, i) if image is not None else ds._load_or_substitute(i)
        if direct:  # in the cache now (a hit, or a miss just written): read here from now on, not ahead in threads
            ds._warm.add(got[1])
        out.append(got)
    return out


def _located(ds: Any) -> dict[int, Location]:
    """The data set's files classified once (:func:`~dicomxray.io.source.locate`), by index, as they are read."""
    memo = ds.__dict__.get("_dicomxray_located")
    if memo is None or memo[0] is not ds.files:
        memo = ds.__dict__["_dicomxray_located"] = (ds.files, {})
    return memo[1]


def _transport(image_dtype: str) -> np.dtype:
    return np.dtype(np.uint8 if image_dtype == "uint8" else np.float32)


_POOL: weakref.WeakKeyDictionary[Any, list[torch.Tensor]] = weakref.WeakKeyDictionary()  # per data set, per process
_POOL_LOCK = threading.Lock()


def _reused(ds: Any, shape: tuple[int, ...], dtype: np.dtype) -> torch.Tensor:
    """A batch buffer of the main process: one of the last few whose batch nobody holds any more (no tensor, array
    or storage of it alive but the pool's, never sent to another process), else a fresh one.  Memory written
    again instead of fresh pages that the kernel zeroes and faults in one by one (an 8 MiB batch: 2048 faults)."""
    if get_worker_info() is not None:  # a worker's batch may leave for another process (moved to shared memory)
        return _empty(shape, dtype, shared=False)
    with _POOL_LOCK:
        pool = _POOL.setdefault(ds, [])
        for n in range(len(pool)):
            t = pool[n]  # free: the pool's reference, this name's and getrefcount's; one storage user beside the probe's
            if t.shape == shape and t.dtype == _TORCH[dtype] and sys.getrefcount(t) == _FREE[0] and _unheld(t.untyped_storage()):
                pool.append(pool.pop(n))
                return t
        t = _empty(shape, dtype, shared=False)
        pool.append(t)
        if len(pool) > _POOLED:
            pool.pop(0)
        return t


def _unheld(storage: torch.UntypedStorage) -> bool:
    """No tensor but the pool's uses ``storage`` and no one holds its Python object but the caller's probe."""
    use_count = getattr(torch._C, "_storage_Use_Count", None)  # a torch without it: buffers are never reused
    return (use_count is not None and sys.getrefcount(storage) == _FREE[1] and use_count(storage._cdata) == 2
            and not storage.is_shared())  # never one sent to another process


def _free_counts() -> tuple[int, int]:
    """What ``sys.getrefcount`` says of a pooled tensor nobody else holds, probed as :func:`_reused` probes it, and of
    its storage in :func:`_unheld` (the interpreter decides how many references its own frames hold)."""
    pool = [torch.empty(1)]
    t = pool[0]
    return sys.getrefcount(t), _storage_refs(t.untyped_storage())


def _storage_refs(storage: torch.UntypedStorage) -> int:
    return sys.getrefcount(storage)


_FREE = _free_counts()
_POOLED = 8  # batch buffers kept per data set and process (images, masks): being read, still held by the loop


def _empty(shape: tuple[int, ...], dtype: np.dtype, *, shared: bool) -> torch.Tensor:
    """A fresh tensor; in shared memory when a worker sends it on as it is (the DataLoader's transfer then moves
    no bytes), as PyTorch's own collate allocates it."""
    t = torch.empty(shape if not shared else 0, dtype=_TORCH[dtype])
    if shared:
        storage = t._typed_storage()._new_shared(int(np.prod(shape)), device=t.device)
        t = t.new(storage).resize_(*shape)
    return t


_TORCH = {np.dtype(np.uint8): torch.uint8, np.dtype(np.uint16): torch.uint16, np.dtype(np.float32): torch.float32,
          np.dtype(np.int64): torch.int64, np.dtype(np.float64): torch.float64}


def _float_buffer(ds: Any, tbuf: torch.Tensor) -> torch.Tensor | None:
    """A reused float32 buffer for a uint8 batch converted to ``float32``, one channel (else ``None``)."""
    if tbuf.dtype != torch.uint8 or ds.image_dtype != "float32" or ds.channels != 1:
        return None
    return _reused(ds, tuple(tbuf.shape), np.dtype(np.float32))


def _convert(tbuf: torch.Tensor, image_dtype: str, channels: int, *, worker: bool,
             out: torch.Tensor | None = None) -> torch.Tensor:
    """``B x H x W`` rendered pixels as the ``B x C x H x W`` batch of ``image_dtype``: the arithmetic of
    :func:`dicomxray.data.samples.to_tensor`, once for the batch (none when the dtypes agree); a uint8 batch made
    float32 into ``out`` where given."""
    b, h, w = tbuf.shape
    if tbuf.dtype == _torch_dtype(image_dtype):
        t = tbuf.unsqueeze(1)
    elif out is not None and tbuf.dtype == torch.uint8:
        t = out.copy_(tbuf).div_(255.0).unsqueeze(1)  # to_tensor's t.to(torch.float32).div_(255.0), in place
    else:
        t = to_tensor(tbuf.numpy().reshape(b * h, w), image_dtype, 1).view(b, 1, h, w)
        if worker:
            t.share_memory_()
    if channels == 3:
        t = t.expand(b, 3, h, w).contiguous()
        if worker:
            t.share_memory_()
    return t


def _torch_dtype(image_dtype: str) -> torch.dtype:
    return torch.uint8 if image_dtype == "uint8" else torch.float32


def ready_collate(batch: list[Any]) -> Any:
    """PyTorch's ``default_collate``, field for field the same batch, except that ``image`` of a batch read at
    once is handed on as the one tensor its samples are views of (:func:`stack_ready`) instead of stacked."""
    if not batch or not isinstance(batch[0], dict) or "image" not in batch[0]:
        return default_collate(batch)
    ready = _ready_batch([s["image"] for s in batch])
    if ready is None:
        return default_collate(batch)
    info = get_worker_info()
    if info is not None:  # this worker's next batches are read straight into shared memory
        setattr(info.dataset, _SENDS_AS_IS, True)
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [s[key] for s in batch]
        if key == "image":
            out[key] = ready
        elif key == "meta":
            out[key] = _collate_meta(values)
        else:
            gathered = _ready_batch(values) if isinstance(values[0], torch.Tensor) else None
            out[key] = gathered if gathered is not None else default_collate(values)
    return out


def _collate_meta(metas: list[Any]) -> Any:
    """``default_collate(metas)``, with the tensors of a batch built at once handed on (:func:`stack_ready`) and
    strings listed without the generic recursion."""
    if not all(type(m) is dict for m in metas):
        return default_collate(metas)
    out: dict[str, Any] = {}
    for key in metas[0]:
        values = [m[key] for m in metas]
        first = values[0]
        if isinstance(first, torch.Tensor):
            ready = _ready_batch(values)
            out[key] = ready if ready is not None else default_collate(values)
        elif type(first) is str and all(type(v) is str for v in values):
            out[key] = values
        else:
            out[key] = default_collate(values)
    return out
