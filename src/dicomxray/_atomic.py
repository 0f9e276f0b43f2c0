"""Atomic file writes: a temporary file beside the target, renamed over it only when complete."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import BinaryIO


@cache
def _file_mode() -> int:
    """The mode ``open()`` would give a new file under this process's umask (0644 under 022).

    ``mkstemp`` always creates 0600, which would make shared exports and caches
    (a team's, or DDP ranks running as other users) unreadable.  The umask can
    only be read by setting it, so that happens once, at the first write.
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_write(target: Path) -> Iterator[BinaryIO]:
    """Yield a binary file; on a clean exit it replaces ``target`` in one ``os.replace``.

    Readers see the old file or the complete new one, never a partial one, whatever
    the number of concurrent writers or a ``kill -9`` mid-write; on any error the
    temporary file (``.<name>.<random>.tmp``) is removed.  An abandoned one (the
    process was killed) is invisible to readers.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
