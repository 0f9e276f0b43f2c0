"""Atomic file writes: a temporary file beside the target, renamed over it only when complete."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO


def file_mode() -> int:
    """The mode ``open()`` would give a new file under this process's umask now (0644 under 022).

    ``mkstemp`` always creates 0600, which would make shared exports and caches
    (a team's, or DDP ranks running as other users) unreadable.  Linux reports the
    umask in ``/proc/self/status``; elsewhere it can only be read by setting it.
    """
    try:
        with open("/proc/self/status") as fh:
            mask = next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(target: Path) -> Iterator[str]:
    """Yield the name of a temporary file beside ``target``; on a clean exit give it the mode a normal
    file gets under the umask and rename it over ``target`` in one ``os.replace``.

    Readers see the old file or the complete new one, never a partial one, whatever the number of
    concurrent writers or a ``kill -9`` mid-write; on any error the temporary file
    (``.<name>.<random>.tmp``) is removed.  An abandoned one (the process was killed) is invisible
    to readers.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


@contextmanager
def atomic_write(target: Path) -> Iterator[BinaryIO]:
    """:func:`atomic_path` as a binary file object."""
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        yield fh
