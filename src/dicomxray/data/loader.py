"""A DataLoader and its :class:`dicomxray.data.prefetch.PrefetchSampler` built together, and the check that
warns when the two were configured apart."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from torch.utils.data import DataLoader, RandomSampler, SequentialSampler, get_worker_info

from ..errors import LoaderWarning
from .prefetch import Ahead, EpochListener, PrefetchSampler

__all__ = ["make_loader", "plan_mismatch", "warn_mismatch"]


def make_loader(dataset: Any, *, batch_size: int, num_workers: int, sampler: Iterable[int] | None = None,
                shuffle: bool = False, drop_last: bool = False, collate_fn: Callable[[Any], Any] | None = None,
                pin_memory: bool = False, persistent_workers: bool | None = None, prefetch_factor: int | None = None,
                multiprocessing_context: Any = None, worker_init_fn: Callable[[int], None] | None = None,
                depth: int | None = None) -> DataLoader:
    """``DataLoader(dataset, ...)`` with a :class:`PrefetchSampler` told the same ``batch_size`` and
    ``num_workers``; ``persistent_workers`` defaults to ``True`` with workers (their read-ahead, thread pools
    and connections then outlive each epoch).  The other options are the DataLoader's."""
    if sampler is None:
        sampler = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
    elif shuffle:
        raise ValueError("give shuffle=True or a sampler, not both")
    listener = dataset if isinstance(dataset, EpochListener) else None
    wrapped = PrefetchSampler(sampler, batch_size=batch_size, num_workers=num_workers, depth=depth, dataset=listener)
    return DataLoader(dataset, batch_size=batch_size, sampler=wrapped, num_workers=num_workers, drop_last=drop_last,
                      collate_fn=collate_fn, pin_memory=pin_memory,
                      persistent_workers=num_workers > 0 if persistent_workers is None else persistent_workers,
                      prefetch_factor=prefetch_factor, multiprocessing_context=multiprocessing_context,
                      worker_init_fn=worker_init_fn)


def plan_mismatch(indices: Sequence[int], size: int | None = None) -> str | None:
    """What differs between the DataLoader reading ``indices`` (one batch, in this process) and what its
    :class:`PrefetchSampler` was told; ``None`` when they agree or no such sampler is used.  ``size`` is the data
    set's length (a data set smaller than one batch gives a shorter first batch)."""
    told = next((i for i in indices if isinstance(i, Ahead)), None)
    if told is None:
        return None
    info = get_worker_info()
    workers = info.num_workers if info is not None else 0
    aligned = isinstance(indices[0], Ahead) and sum(isinstance(i, Ahead) for i in indices) == 1
    # The batch that carries the epoch's first hint is a whole one, unless the data set is smaller than a batch.
    whole = len(indices) == told.batch_size or (size is not None and len(indices) == size < told.batch_size)
    if workers == told.num_workers and aligned and whole:
        return None
    return (f"the DataLoader reads batches of {len(indices)} with num_workers={workers}, but its PrefetchSampler was told "
            f"batch_size={told.batch_size}, num_workers={told.num_workers}: read-ahead goes to the wrong worker "
            "(more requests, slower epochs); build both with dataset.loader(batch_size=..., num_workers=...)")


def warn_mismatch(message: str) -> None:
    warnings.warn(f"dicomxray: {message}", LoaderWarning, stacklevel=3)
