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

__all__ = ["Failures", "SkipLog"]


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
