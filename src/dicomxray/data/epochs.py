"""The bucket listing behind ``remote_identity="auto"`` and ``"listing"``: made by the process that built the data
set once per pass over the data, and handed to every DataLoader worker through a private folder, so a cached read
needs no client, no connection and no request in any worker, fresh or persistent.

When a pass begins is told to the process that built the data set (the *owner*) in one of three ways:

* a fork from the owner, most likely a DataLoader starting the fresh workers of a pass (PyTorch's default), starts
  the listing at once, while the workers start; it serves the next pass only if no batch began since it started;
* every PyTorch sampler (``SequentialSampler``, ``RandomSampler``, ``DistributedSampler``...) asks the data set's
  length when its pass begins, in the main process, before the DataLoader hands its workers any index: the owner's
  ``len()`` starts the pass's listing in a background thread (a plain ``DataLoader``, persistent workers or not);
* a :class:`dicomxray.data.prefetch.PrefetchSampler` given ``dataset=`` tells the pass's start and end: the
  listing for the next pass is made in the background while the current one hands out its last batches, and
  the length requests are then not taken for pass starts.

The first pass uses the listing the data set was built from.  Each pass start is a new *generation*: the owner
writes a small marker (the generation and when its pass began) at once, and the listing under that generation's
name when it is made.  A process reading the data set looks at the marker at each batch's first index (one
``stat``) and waits for a newer generation's listing when there is one; a freshly started worker never keeps a
listing whose pass began before it started: it waits for the owner's, and lists the store itself (one request
per 1,000 objects) only when no pass start was told after it started (a sampler that never asks the length).

So the freshness is bounded by the pass: an object overwritten before a pass's last batch began is seen by the
next pass (the first pass uses the data set's own listing), and ``remote_identity="request"`` checks every read
instead.  A cache miss's GET carries the object's own identity, so a version read is never stored under another
version's key.  A process reading without any pass start told (its own sampler that never asks the length, in the
owner) keeps the data set's own listing.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any

from ..dicom.discover_url import relist
from ..io.atomic import atomic_write
from ..io.source import FileIdentity

__all__ = ["EpochListing", "WAIT_S"]

#: How long a worker waits for the owner's listing of a pass before it lists the store itself.
WAIT_S = 60.0
_POLL_S = 0.002
_MARKER = "pass"
_READS = "reads"  # its mtime: when a process last began a batch (monotonic ns)


def _started() -> int:
    return time.monotonic_ns()


_PROCESS_STARTED = _started()  # a spawned worker imports this module when it starts
_FORKING = 0


# this process's listings, by id (a Mapping is not hashable; forked children own none)
_OWNED: weakref.WeakValueDictionary[int, EpochListing] = weakref.WeakValueDictionary()


def _before_fork() -> None:
    """The parent's clock (a child may run its first line well after the parent went on); and a fork from an owner
    is most likely a DataLoader starting the workers of a new pass (PyTorch's default: fresh workers each pass),
    after the last pass ended: that pass's listing starts now, while the workers start, instead of when the
    sampler asks the length."""
    global _FORKING
    _FORKING = _started()
    for listing in list(_OWNED.values()):
        listing._ahead_of_fork()


def _after_fork_in_child() -> None:
    global _PROCESS_STARTED, _OWNED
    _PROCESS_STARTED = _FORKING
    _OWNED = weakref.WeakValueDictionary()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


class _Job:
    """One listing of the root, made in a thread: its result, and the generation it was given (``None`` until a
    pass begins with it)."""

    def __init__(self, future: Future[dict[str, FileIdentity]]) -> None:
        self.future = future
        self.generation: int | None = None
        self.used = False  # read with by the owner itself
        self.started = _started()
        self.tentative = False  # started at a fork: good for a pass only if nothing was read since it started


class EpochListing(Mapping[str, FileIdentity]):
    """The identities (ETag, size, Last-Modified) a listing of ``root`` gave, renewed once per pass.

    Parameters
    ----------
    root : str
        The URL prefix listed.
    storage_options : mapping, optional
        The fsspec filesystem's options.
    identities : mapping
        The listing the data set was built from (used by its first pass).
    versioned_only : bool
        Keep only the entries that carry a strong version token (:attr:`FileIdentity.versioned`): the others
        are checked by a request per read (``remote_identity="auto"``).
    """

    def __init__(self, root: str, storage_options: Mapping[str, Any] | None,
                 identities: Mapping[str, FileIdentity], *, versioned_only: bool = False) -> None:
        self.root, self.storage_options, self.versioned_only = root, storage_options, versioned_only
        self._identities = self._kept(identities)
        # every entry names bytes that never change (DICOMweb UIDs): a cached read needs no newer listing, so no
        # pass waits for one (the owner still relists in the background: a server that is down is warned of)
        self._immutable = bool(self._identities) and all(i.immutable for i in self._identities.values())
        self._owner = self._pid = os.getpid()
        self._generation = 0  # the generation this process holds (0: the data set's own listing)
        self._seen: tuple[int, int] | None = None  # the marker's (inode, mtime) when this process last looked
        self._assigned = 0  # the owner's last generation
        self._told = False  # a PrefetchSampler tells the passes: length requests are not pass starts
        self._lock = threading.Lock()
        built: Future[dict[str, FileIdentity]] = Future()
        built.set_result(self._identities)
        self._job: _Job | None = _Job(built)  # the first pass takes the listing the data set was built from
        # a private folder (0700) for each pass's listing; made now, so that workers forked at any time know it
        self._shared = tempfile.mkdtemp(prefix="dicomxray-listing-")
        _never_read(self._shared)
        weakref.finalize(self, _remove_folder, self._shared, self._owner)
        _OWNED[id(self)] = self

    def __getstate__(self) -> dict[str, Any]:  # a thread's future and a lock do not travel to spawned workers
        state = dict(self.__dict__)
        state["_job"], state["_lock"] = None, None
        state["_sent"] = _started()  # a spawned worker starts when it is sent: it may run its first line much later
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._received = os.getpid()
        if self._received == self._owner:  # a copy in the owner's own process (deepcopy): an owner of its own
            self._shared = tempfile.mkdtemp(prefix="dicomxray-listing-")
            _never_read(self._shared)
            weakref.finalize(self, _remove_folder, self._shared, self._owner)
            self._assigned = self._generation = 0
            _OWNED[id(self)] = self

    def _process_started(self) -> int:
        """When this process started, on the clock of the process that started it."""
        sent = self.__dict__.get("_sent")
        return sent if sent is not None and self.__dict__.get("_received") == os.getpid() else _PROCESS_STARTED

    # ----------------------------------------------------------------- the mapping
    def __getitem__(self, url: str) -> FileIdentity:
        return self._identities[url]

    def __iter__(self) -> Iterator[str]:
        return iter(self._identities)

    def __len__(self) -> int:
        return len(self._identities)

    def __repr__(self) -> str:
        return f"EpochListing({self.root!r}, {len(self)} objects, generation {self._generation})"

    def _kept(self, identities: Mapping[str, FileIdentity | None]) -> dict[str, FileIdentity]:
        return {url: ident for url, ident in identities.items()
                if ident is not None and (ident.versioned or not self.versioned_only)}

    def list_now(self) -> dict[str, FileIdentity]:
        """One listing of ``root`` (any thread): the identity of every object that has one (a versioned one
        with ``versioned_only``)."""
        return self._kept(relist(self.root, self.storage_options, self._identities))

    # ----------------------------------------------------------------- the owner: passes begin and end
    def begin(self, *, told: bool = False) -> None:
        """A pass begins (the owner only; elsewhere nothing): it gets a new generation, listed in the background
        unless a listing started since the last pass began is there (the data set's own, or one made while the
        last pass ended).  ``told``: a :class:`~dicomxray.data.prefetch.PrefetchSampler` says so (else a length
        request); then its listing is waited for here, and later length requests no longer begin passes."""
        if os.getpid() != self._owner:
            return
        with self._lock:
            first_told = told and not self._told
            if told:
                self._told = True
            elif self._told:
                return
            job = self._job
            failed = job is not None and job.future.done() and job.future.exception() is not None
            if job is not None and job.generation is not None and not failed and not self._used(job) \
                    and (first_told or not told):
                self._stamp(job.generation)  # no pass read with it yet (several length requests): it serves this one
            else:
                stale = job is not None and job.tentative and self._last_read() >= job.started
                if job is None or job.generation is not None or failed or stale:
                    job = self._job = self._start()
                self._assigned += 1
                job.generation = self._assigned
                self._stamp(job.generation)
                job.future.add_done_callback(partial(self._publish, job.generation))
        if told:
            self._catch_up(job)

    def ending(self) -> None:
        """The pass has handed out its last index (a PrefetchSampler says so): the next pass's listing starts now,
        in the background."""
        if os.getpid() != self._owner:
            return
        with self._lock:
            if self._job is None or self._job.generation is not None:
                self._job = self._start()

    def _ahead_of_fork(self) -> None:
        """This process forks (the owner only): start the next pass's listing unless a pass start is told by a
        PrefetchSampler, a listing no pass has read with is there, or the lock is held (never wait in a fork)."""
        if os.getpid() != self._owner or self._told or not self._lock.acquire(blocking=False):
            return
        try:
            job = self._job
            failed = job is not None and job.future.done() and job.future.exception() is not None
            if job is None or failed or (job.generation is not None and self._used(job)):
                self._job = self._start()
                self._job.tentative = True
        finally:
            self._lock.release()

    def _stamp(self, generation: int) -> None:
        """The marker: ``generation`` serves the pass that begins now."""
        with atomic_write(Path(self._shared) / _MARKER) as fh:
            fh.write(f"{generation} {_started()}".encode())

    def _last_read(self) -> int:
        """When a process last began a batch (``renew``), on the monotonic clock (0: never)."""
        try:
            return os.stat(os.path.join(self._shared, _READS)).st_mtime_ns
        except OSError:
            return 0

    def _used(self, job: _Job) -> bool:
        """Whether a pass has read with ``job``'s listing (the owner, or a worker that left ``<generation>.used``)."""
        return job.used or os.path.exists(os.path.join(self._shared, f"{job.generation}.used"))

    def _start(self) -> _Job:
        future: Future[dict[str, FileIdentity]] = Future()

        def run() -> None:
            try:
                future.set_result(self.list_now())
            except BaseException as exc:  # handed to whoever waits for it (raised there, naming the root)
                future.set_exception(exc)

        threading.Thread(target=run, name="dicomxray-listing", daemon=True).start()
        return _Job(future)

    def _publish(self, generation: int, future: Future[dict[str, FileIdentity]]) -> None:
        """Leave a finished listing for the workers (``<generation>.pkl``, or ``.failed``); drop older ones."""
        folder = Path(self._shared)
        if future.exception() is not None:
            (folder / f"{generation}.failed").touch()
            return
        with atomic_write(folder / f"{generation}.pkl") as fh:
            pickle.dump(future.result(), fh, protocol=pickle.HIGHEST_PROTOCOL)
        for old in folder.glob("*.*"):
            stem = old.name.partition(".")[0]
            if stem.isdigit() and int(stem) < generation - 1:
                old.unlink(missing_ok=True)

    def _catch_up(self, job: _Job) -> None:
        """The owner takes a pass's listing (waiting for it): raises what the listing raised."""
        identities = job.future.result()
        job.used = True
        if job.generation is not None and job.generation > self._generation:
            self._identities, self._generation = identities, job.generation

    # ----------------------------------------------------------------- every process: a batch begins
    def renew(self, token: int | None = None) -> None:
        """Bring this process's identities to the newest pass (at each batch's first index, in any process):
        nothing when they already are (one ``stat``).  ``token`` (a PrefetchSampler's pass) is not needed: the
        marker says which pass is the newest."""
        pid = os.getpid()
        if self._immutable:
            return
        now = _started()
        with contextlib.suppress(OSError):  # a listing started at a fork before this is not this pass's
            os.utime(os.path.join(self._shared, _READS), ns=(now, now))
        if pid == self._owner:
            job = self._job
            if job is not None and job.generation is not None and job.generation > self._generation:
                self._catch_up(job)
            return
        marker_path = os.path.join(self._shared, _MARKER)
        try:
            st = os.stat(marker_path)
            seen: tuple[int, int] | None = (st.st_ino, st.st_mtime_ns)
        except OSError:
            seen = None
        fresh = pid != self._pid
        if not fresh and seen == self._seen:
            return
        marker, started = self._read_marker(), self._process_started()
        if marker is not None and marker[1] >= started and marker[0] > self._generation:
            self._identities, self._generation = self._wait_for(marker[0])
        elif marker is None or marker[1] < started:  # no pass begun since this process started
            if fresh:
                self._identities = self.list_now()
                self._generation = marker[0] if marker is not None else self._generation
        # else: this process already holds the newest pass's listing (inherited when it was forked)
        if fresh or seen != self._seen:
            with contextlib.suppress(OSError):  # a pass reads with it: the next one needs a new listing
                Path(self._shared, f"{self._generation}.used").touch()
        self._pid, self._seen = pid, seen

    def _read_marker(self) -> tuple[int, int] | None:
        try:
            with open(os.path.join(self._shared, _MARKER), "rb") as fh:
                generation, begun = fh.read().split()
            return int(generation), int(begun)
        except (OSError, ValueError):
            return None

    def _wait_for(self, generation: int) -> tuple[dict[str, FileIdentity], int]:
        """The owner's listing of ``generation`` or a newer one (waited for), else this process's own listing."""
        folder = Path(self._shared)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            marker = self._read_marker()
            newest = max(generation, marker[0] if marker is not None else 0)
            for g in range(newest, generation - 1, -1):
                try:
                    with open(folder / f"{g}.pkl", "rb") as fh:
                        return pickle.load(fh), g  # written by _publish() in our own private folder
                except FileNotFoundError:
                    if (folder / f"{g}.failed").exists():
                        return self.list_now(), newest  # raises the store's error here, naming the root
            time.sleep(_POLL_S)
        return self.list_now(), generation  # the owner never published it (gone, or stuck): list it here


def _never_read(folder: str) -> None:
    path = os.path.join(folder, _READS)
    Path(path).touch()
    os.utime(path, ns=(0, 0))


def _remove_folder(path: str, pid: int) -> None:
    if os.getpid() == pid:  # forked workers hold copies: only the process that made it removes it
        import shutil

        shutil.rmtree(path, ignore_errors=True)
