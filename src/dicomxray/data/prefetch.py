"""Prefetching the next samples of the sampler's order, in threads, within a memory budget.

An object store answers in 20-100 ms: a DataLoader worker that reads one
file at a time waits that long per image.  Here the sampler tells each index
which ones the same worker will ask for next, and the dataset reads those in a
small thread pool while the current one is used (GETs wait on the network;
decoders, the LUT gather and the resize release the GIL), so the latency is
paid once per pipeline fill instead of once per sample::

    from dicomxray.data.prefetch import PrefetchSampler

    ds = DicomXrayDataset("s3://bucket/train", storage_options={...}, cache="/local/cache")
    loader = ds.loader(batch_size=16, num_workers=4, sampler=DistributedSampler(ds))
    # the same as (with the same batch_size / num_workers in both):
    sampler = PrefetchSampler(DistributedSampler(ds), batch_size=16, num_workers=4, dataset=ds)
    loader = DataLoader(ds, batch_size=16, num_workers=4, sampler=sampler, persistent_workers=True)

:class:`PrefetchSampler` wraps any sampler (``RandomSampler``,
``DistributedSampler``...) and yields the same indices as :class:`Ahead`
ints: each batch's first index carries the positions that the worker which
gets the batch will read next (the rest of its batch, then its next batches:
the DataLoader hands batches to workers in turn).  Without it a dataset still
reads each batch's samples at once (``__getitems__``), but not the next batch;
a wrong guess (other ``num_workers``) only wastes prefetches, never changes a
sample, and the dataset warns about it (``LoaderWarning``).

:class:`Prefetcher` is the per-process engine: at most ``threads`` reads in
flight, and finished-but-unused results held within ``max_bytes`` (results
never asked for are dropped after a while).  It holds no thread across
``fork``/``pickle``: a DataLoader worker builds its own pool on first use.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

__all__ = ["Ahead", "EpochListener", "PrefetchConfig", "PrefetchSampler", "Prefetcher"]

T = TypeVar("T")


@dataclass(frozen=True)
class PrefetchConfig:
    """How much a :class:`Prefetcher` may read ahead.

    Parameters
    ----------
    threads : int
        Reads in flight at once (0 turns prefetching off).  An object store's
        latency is hidden when ``threads`` >= latency / time per sample: 32 covers
        50 ms against cached reads of ~1.5 ms per sample and worker (16 held a
        cached ``"request"`` epoch at 0.40x a local one, 32 at 0.75x).
    max_bytes : int
        Budget for results read ahead and not used yet (rendered arrays), per
        process; reads are not started beyond it.
    """

    threads: int = 32
    max_bytes: int = 256 * 2**20

    def __post_init__(self) -> None:
        if not isinstance(self.threads, int) or self.threads < 0:
            raise ValueError(f"threads must be an integer >= 0, got {self.threads!r}")
        if not isinstance(self.max_bytes, int) or self.max_bytes < 0:
            raise ValueError(f"max_bytes must be an integer >= 0, got {self.max_bytes!r}")


class Ahead(int):
    """A sample index that also says which indices its worker will read next (``ahead``), which pass over a
    sampler it belongs to (``epoch``: a token, new at each pass; a data set keyed by a bucket listing takes the
    listing of that pass when the token changes) and the ``batch_size``/``num_workers`` the sampler was told
    (the data set warns when the DataLoader's differ)."""

    ahead: tuple[int, ...]
    epoch: int | None
    batch_size: int
    num_workers: int

    def __new__(cls, value: int, ahead: tuple[int, ...] = (), epoch: int | None = None, batch_size: int = 1,
                num_workers: int = 0) -> Ahead:
        obj = super().__new__(cls, value)
        obj.ahead, obj.epoch, obj.batch_size, obj.num_workers = ahead, epoch, batch_size, num_workers
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (Ahead, (int(self), self.ahead, self.epoch, self.batch_size, self.num_workers))


@runtime_checkable
class EpochListener(Protocol):
    """What :class:`PrefetchSampler` tells the data set it was given (``dataset=``), in the main process."""

    def start_epoch(self, token: int) -> None:
        """A pass over the sampler begins; ``token`` is new at each pass and travels in its :class:`Ahead` ints."""

    def epoch_ending(self) -> None:
        """The pass has handed out its last index: work for the next pass (a bucket listing) may start now."""


class PrefetchSampler(Iterable[int], Sized):
    """Wrap ``sampler`` so each batch's first index carries what its DataLoader worker reads next.

    The simplest correct use is :meth:`dicomxray.DicomXrayDataset.loader`, which builds the DataLoader and
    this sampler with the same ``batch_size`` and ``num_workers``; a DataLoader configured otherwise gets a
    :class:`dicomxray.errors.LoaderWarning` from the data set (prefetches then go to the wrong worker).

    Parameters
    ----------
    sampler : iterable of int
        Any sampler; its order is unchanged (``set_epoch`` is passed on).
    batch_size, num_workers : int
        Those of the DataLoader (``num_workers=0``: the main process reads every batch).
    depth : int, optional
        Indices announced ahead (default: two batches, at least 48: enough to keep the default 32 read-ahead
        threads busy).  The last batches of a pass announce the
        first ones of the next pass (drawn from ``sampler`` when this one ends), so with persistent workers an
        epoch does not start with an empty pipeline.
    dataset : EpochListener, optional
        The data set read: told when each pass starts and ends (a data set keyed by a bucket listing takes the
        listing for the pass there, made in the background during the previous one, once for all its workers).
    """

    def __init__(self, sampler: Iterable[int], *, batch_size: int = 1, num_workers: int = 0,
                 depth: int | None = None, dataset: EpochListener | None = None) -> None:
        if batch_size < 1 or num_workers < 0:
            raise ValueError(f"need batch_size >= 1 and num_workers >= 0, got {batch_size}, {num_workers}")
        if dataset is not None and not isinstance(dataset, EpochListener):
            raise TypeError(f"dataset= must have start_epoch() and epoch_ending() (EpochListener), got {type(dataset)}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.depth = depth if depth is not None else max(48, 2 * batch_size)
        self.dataset = dataset
        self._epoch: int | None = None
        self._next: tuple[int | None, list[int]] | None = None  # (set_epoch value, order) drawn ahead

    def __len__(self) -> int:
        return len(self.sampler)  # type: ignore[arg-type]

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        setter = getattr(self.sampler, "set_epoch", None)  # torch's DistributedSampler protocol
        if setter is not None:
            setter(epoch)

    def _current(self) -> int | None:
        """The epoch ``sampler`` draws for: its own ``epoch`` when it has one (``DistributedSampler``'s, which a
        training loop may set on it directly), else the last :meth:`set_epoch` value here."""
        epoch = getattr(self.sampler, "epoch", self._epoch)
        return epoch if isinstance(epoch, int) else self._epoch

    def _draw(self) -> list[int]:
        """This pass's order: the one drawn ahead at the end of the last pass when it was drawn for this epoch
        (any order of a sampler without ``set_epoch``: each pass draws anew)."""
        ahead, self._next = self._next, None
        if ahead is not None and (ahead[0] is None or ahead[0] == self._current()):
            return ahead[1]
        return [int(i) for i in self.sampler]

    def _draw_next(self) -> list[int]:
        """The next pass's order, drawn now (for ``set_epoch`` samplers, with the next epoch number; none when that
        number is unknown)."""
        setter = getattr(self.sampler, "set_epoch", None)
        if setter is None:
            order = [int(i) for i in self.sampler]
            self._next = (None, order)
            return order
        epoch = self._current()
        if epoch is None:
            return []
        setter(epoch + 1)
        order = [int(i) for i in self.sampler]
        setter(epoch)
        self._next = (epoch + 1, order)
        return order

    def __iter__(self) -> Iterator[int]:
        b, epoch = self.batch_size, time.monotonic_ns()  # unique per pass of any sampler in this process
        if self.dataset is not None:  # first: the length the sampler asks below is then not taken for a pass start
            self.dataset.start_epoch(epoch)
        order = self._draw()
        # the last batches announce the next pass's first ones (drawn once this pass's tail is reached)
        tail, following = max(0, len(order) - self.depth * max(1, self.num_workers) - b), None
        for start in range(0, len(order), b):
            if start >= tail and following is None:
                following = self._draw_next()
            yield Ahead(order[start], tuple(self._ahead(order, start, following or [])), epoch, b, self.num_workers)
            yield from order[start + 1 : start + b]
        if self.dataset is not None:
            self.dataset.epoch_ending()

    def _ahead(self, order: list[int], start: int, following: list[int]) -> Iterator[int]:
        """The rest of the batch at ``start``, then the batches its worker gets next, ``depth`` in all; past the
        end of ``order``, the batches that worker gets first in ``following`` (DataLoader workers take batches
        in turn, starting again from the first worker at each pass)."""
        b, stride, left = self.batch_size, max(1, self.num_workers), self.depth
        batch = start
        while left > 0 and batch < len(order):
            first = start + 1 if batch == start else batch
            chunk = order[first : min(batch + b, first + left)]
            yield from chunk
            left -= len(chunk)
            batch += b * stride
        worker = (start // b) % stride
        nxt = worker
        while left > 0 and nxt * b < len(following):
            chunk = following[nxt * b : nxt * b + min(b, left)]
            yield from chunk
            left -= len(chunk)
            nxt += stride


class _Entry(Generic[T]):
    """One read ahead: its future, the take count when it started, the bytes it holds in the budget."""

    __slots__ = ("future", "held", "submitted", "taken")

    def __init__(self, future: Future[T], submitted: int) -> None:
        self.future, self.submitted, self.held, self.taken = future, submitted, 0, False


def _nbytes(result: Any) -> int:
    pixels = getattr(result, "pixels", result)
    return int(getattr(pixels, "nbytes", 0))


class Prefetcher(Generic[T]):
    """Read ahead in a thread pool: :meth:`hint` starts reads, :meth:`take` gets one (or reads it now).

    Results are keyed by sample index; an exception raised by a read is raised
    again by :meth:`take`, exactly as a direct read would have.  Safe to pickle
    and to fork: the pool and the results belong to the process that made them.
    """

    def __init__(self, config: PrefetchConfig | None = None, *, sizeof: Callable[[Any], int] = _nbytes) -> None:
        self.config = config or PrefetchConfig()
        self.sizeof = sizeof
        self._pid = -1
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.RLock()  # a done callback may run in the thread holding it
        self._pool: ThreadPoolExecutor | None = None
        self._pending: OrderedDict[int, _Entry[T]] = OrderedDict()
        self._held = 0  # bytes of finished results not taken yet
        self._average = 0.0  # running mean result size, to budget reads in flight
        self._takes = 0
        self.hits = self.misses = self.dropped = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "sizeof": self.sizeof}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["config"], sizeof=state["sizeof"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Prefetcher({self.config!r})"

    def _mine(self) -> None:
        if self._pid != os.getpid():  # forked: the parent's threads do not exist here
            self._reset()

    def hint(self, keys: Iterable[int], read: Callable[[int], T]) -> None:
        """Start reading ``keys`` (in order) that are not read or being read, within the budget."""
        if self.config.threads == 0:
            return
        self._mine()
        with self._lock:
            self._drop_stale()
            for key in keys:
                if key in self._pending:
                    continue
                in_flight = sum(1 for e in self._pending.values() if not e.future.done())
                if in_flight >= self.config.threads:
                    break
                if self._held + (in_flight + 1) * self._average > self.config.max_bytes:
                    break
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.config.threads, thread_name_prefix="dicomxray-prefetch")
                entry = _Entry(self._pool.submit(read, key), self._takes)
                self._pending[key] = entry
                entry.future.add_done_callback(partial(self._finished, entry))

    def _finished(self, entry: _Entry[T], _: Future[T]) -> None:
        if entry.future.exception() is not None:
            return
        size = self.sizeof(entry.future.result())
        with self._lock:
            self._average = size if self._average == 0 else 0.9 * self._average + 0.1 * size
            if not entry.taken:
                entry.held = size
                self._held += size

    def _drop_stale(self) -> None:
        """Forget finished results nobody asked for within many takes (the sampler guessed wrong)."""
        horizon = 4 * max(self.config.threads, 32)
        for key in [k for k, e in self._pending.items() if e.future.done() and self._takes - e.submitted > horizon]:
            self._release(self._pending.pop(key))
            self.dropped += 1

    def _release(self, entry: _Entry[T]) -> None:
        entry.taken = True
        self._held -= entry.held
        entry.held = 0

    def take(self, key: int, read: Callable[[int], T]) -> T:
        """The result for ``key``: read ahead (waiting if still in flight), or read now."""
        self._mine()
        with self._lock:
            entry = self._pending.pop(key, None)
            self._takes += 1
            if entry is not None:
                self._release(entry)
        if entry is None:
            self.misses += 1
            return read(key)
        self.hits += 1
        return entry.future.result()  # raises what the read raised
