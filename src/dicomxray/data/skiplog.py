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

__all__ = ["SkipLog"]


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
