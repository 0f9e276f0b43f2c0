"""Opening a source: one consistent read of the bytes, and the file's identity.

The identity travels with the bytes through the pipeline, so the cache
compares what was actually read instead of statting or hashing again.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace

from .errors import ImageTooLargeError, NotDicomError, SourceChangedError, SourceFileNotFoundError

__all__ = ["FileIdentity", "Source", "file_identity", "read_source"]


@dataclass(frozen=True)
class FileIdentity:
    """What identifies a file's content.

    ``stat`` fields: resolved path, size, mtime and ctime in ns and the inode.
    ``cp -p``, ``rsync -t`` or ``tar -x`` can give a replacement the same size
    and mtime, but not the same inode and ctime (the kernel sets those).
    ``sha256`` is set only when the content was hashed.
    """

    path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    sha256: str = ""

    def key(self, content: bool) -> str:
        """The text the cache key is built from: the content hash, or every stat field."""
        if content:
            return self.sha256
        return f"{self.path}\0{self.size}\0{self.mtime_ns}\0{self.ctime_ns}\0{self.inode}"

    def same_stat(self, other: FileIdentity) -> bool:
        return (self.path, self.size, self.mtime_ns, self.ctime_ns, self.inode) == (
            other.path, other.size, other.mtime_ns, other.ctime_ns, other.inode)


@dataclass(frozen=True)
class Source:
    """The bytes of one file, read once, and their identity."""

    data: bytes
    identity: FileIdentity

    @property
    def path(self) -> str:
        return self.identity.path


def _identity(path: str, st: os.stat_result) -> FileIdentity:
    return FileIdentity(path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def resolve(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def file_identity(path: str | os.PathLike[str]) -> FileIdentity:
    """The stat :class:`FileIdentity` of ``path`` (no read), or ``SourceFileNotFoundError``."""
    p = resolve(path)
    try:
        return _identity(p, os.stat(p))
    except FileNotFoundError:
        raise SourceFileNotFoundError(f"{p}: file not found", path=p) from None


def read_source(
    path: str | os.PathLike[str], *, max_bytes: int | None = None, content_hash: bool = False, attempts: int = 3
) -> Source:
    """Read the whole file with one ``read``; retry if it changed in place meanwhile.

    ``fstat`` on the open descriptor before and after the read must agree: a
    file rewritten while we read it would otherwise give a mixed image.  A
    file replaced by rename is safe by construction (we hold the old inode).
    Files larger than ``max_bytes`` are refused before they are read.
    """
    p = resolve(path)
    for _ in range(attempts):
        try:
            with open(p, "rb") as fh:
                before = os.fstat(fh.fileno())
                if max_bytes is not None and before.st_size > max_bytes:
                    raise ImageTooLargeError(
                        f"{p}: file is {before.st_size} bytes, more than the configured max_pixels can need", path=p)
                data = fh.read()
                after = os.fstat(fh.fileno())
        except FileNotFoundError:
            raise SourceFileNotFoundError(f"{p}: file not found", path=p) from None
        except IsADirectoryError:
            raise NotDicomError(f"{p}: is a directory, not a DICOM file", path=p) from None
        ident = _identity(p, before)
        # Content changes show in size and mtime; the inode's ctime also moves when a rename replaces the
        # file meanwhile (its link count drops), which leaves the bytes we hold intact.
        if (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns) == (len(data), before.st_mtime_ns):
            if content_hash:
                ident = replace(ident, sha256=hashlib.sha256(data).hexdigest())
            return Source(data, ident)
    raise SourceChangedError(f"{p}: file kept changing while being read ({attempts} attempts)", path=p)
