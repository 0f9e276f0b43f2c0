"""The record of files a dataset skipped (``on_error="skip"``), shared by its DataLoader workers.

One append-only file per dataset: lines written with ``O_APPEND`` from any
worker never interleave, the file exists only once something was skipped, and
it is removed when the dataset that created it is garbage-collected in the
process that created it (workers hold copies of the dataset and leave it).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
import weakref
from collections.abc import Iterator

__all__ = ["Failures", "SkipLog", "substitutes"]


class SkipLog:
    """``record(path, error)`` from any process; ``entries()`` lists ``(path, error)`` without repeats."""

    def __init__(self, owner: object) -> None:
        self.path = os.path.join(tempfile.gettempdir(), f"dicomxray-skipped-{uuid.uuid4().hex}.tsv")
        weakref.finalize(owner, _remove, self.path, os.getpid())

    def record(self, path: str, exc: Exception) -> None:
        line = f"{path}\t{type(exc).__name__}: {str(exc).replace(chr(10), ' ')}\n"
        with open(self.path, "a") as fh:
            fh.write(line)

    def entries(self) -> list[tuple[str, str]]:
        if not os.path.exists(self.path):
            return []
        seen: dict[str, str] = {}
        with open(self.path) as fh:
            for line in fh:
                path, _, err = line.rstrip("\n").partition("\t")
                seen.setdefault(path, err)
        return list(seen.items())


def _remove(path: str, pid: int) -> None:
    if os.getpid() == pid:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class Failures:
    """Reads that failed in this process, remembered so that under ``on_error="skip"`` a bad file is read at
    most once per pass (a run of k bad files otherwise costs k^2/2 reads: every index of the run tries each
    one after it before reaching a readable substitute).

    Forgotten when a new pass begins (``epoch`` token of :class:`dicomxray.data.prefetch.PrefetchSampler`), or
    else after ``span`` samples served by this process (at least one pass), so a file mended during training is
    read again.  Per process: each DataLoader worker remembers its own; a copy made by ``fork`` or ``pickle``
    starts empty.
    """

    def __init__(self, span: int) -> None:
        self.span = max(1, span)
        self._reset(None)

    def _reset(self, epoch: int | None) -> None:
        self._pid, self._epoch, self._served = os.getpid(), epoch, 0
        self._failed: dict[int, Exception] = {}

    def __getstate__(self) -> dict[str, int]:
        return {"span": self.span}

    def __setstate__(self, state: dict[str, int]) -> None:
        self.__init__(state["span"])  # type: ignore[misc]

    def served(self, epoch: int | None) -> None:
        """One sample asked for (of pass ``epoch`` when known): forget old failures at a new pass."""
        if self._pid != os.getpid() or (epoch is not None and epoch != self._epoch) or self._served >= self.span:
            self._reset(epoch if epoch is not None else self._epoch)
        self._served += 1

    def known(self, index: int) -> Exception | None:
        """The error ``index`` failed with during this pass, if it did."""
        return self._failed.get(index) if self._pid == os.getpid() else None

    def remember(self, index: int, exc: Exception) -> None:
        self._failed[index] = exc

    def __contains__(self, index: object) -> bool:
        return index in self._failed and self._pid == os.getpid()


_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finaliser: a stable hash of an int (Python's ``hash`` is salted per process for str only, but
    is the identity on small ints: useless as a draw)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def substitutes(index: int, epoch: int, n: int, *, draws: int = 32) -> Iterator[int]:
    """The indices tried, in order, in place of a failed ``index`` of a data set of ``n`` (``on_error="skip"``).

    First ``draws`` indices drawn from a hash of ``(index, epoch, k)``, then every index once from a drawn start
    (so a data set with one readable file still finds it); never ``index`` itself.  The same on every run and in
    every worker, different for neighbouring indices: the substitutes of a run of bad files are spread over the
    readable files instead of all being the file after the run.
    """
    if n <= 1:
        return
    seed = _mix(_mix(index) ^ (epoch * 0x632BE59BD9B4E019 & _MASK))
    for k in range(draws):
        yield (index + 1 + _mix(seed + k) % (n - 1)) % n
    start = _mix(seed ^ 0x5851F42D4C957F2D) % n
    for k in range(n):
        j = (start + k) % n
        if j != index:
            yield j
