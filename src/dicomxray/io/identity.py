"""What identifies a source's content, and the bytes read once with that identity: plain values shared by
local reads (:mod:`dicomxray.io.source`) and URL reads (:mod:`dicomxray.io.remote`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

__all__ = ["FileIdentity", "Source", "is_url", "local_path"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def is_url(path: object) -> bool:
    """Whether ``path`` is a URL read through fsspec (any ``scheme://`` but ``file://``)."""
    if not isinstance(path, str):
        return False
    m = _SCHEME.match(path)
    return m is not None and m.group(1).lower() != "file"


def local_path(path: str | os.PathLike[str]) -> str:
    """``path`` without a ``file://`` prefix (any other text unchanged)."""
    text = os.fspath(path)
    return text[7:] if text[:7].lower() == "file://" else text


@dataclass(frozen=True)
class FileIdentity:
    """What identifies a file's content.

    ``stat`` fields: resolved path, size, mtime and ctime in ns and the inode.
    ``cp -p``, ``rsync -t`` or ``tar -x`` can give a replacement the same size
    and mtime, but not the same inode and ctime (the kernel sets those).
    ``sha256`` is set only when the content was hashed.

    For a URL, ``path`` is the URL, ``mtime_ns`` its Last-Modified (whole
    seconds), ``etag`` its ETag (or version id / generation when the store has
    no ETag), and ``ctime_ns``/``inode`` are 0.  A URL whose store gives neither
    ETag nor Last-Modified has a weak identity: it never equals another, so no
    cache entry is ever written for it (a cache cannot tell its versions apart).
    """

    path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    sha256: str = ""
    etag: str = ""

    def key(self, content: bool) -> str:
        """The text the cache key is built from: the content hash, or every stat field (and the ETag)."""
        if content:
            return self.sha256
        base = f"{self.path}\0{self.size}\0{self.mtime_ns}\0{self.ctime_ns}\0{self.inode}"
        return f"{base}\0{self.etag}" if self.etag else base

    @property
    def weak(self) -> bool:
        """A URL identity with neither ETag nor Last-Modified: size alone cannot tell versions apart."""
        return not self.etag and not self.mtime_ns and is_url(self.path)

    def same_stat(self, other: FileIdentity) -> bool:
        if self.weak or other.weak:
            return False
        return (self.path, self.size, self.mtime_ns, self.ctime_ns, self.inode, self.etag) == (
            other.path, other.size, other.mtime_ns, other.ctime_ns, other.inode, other.etag)


@dataclass(frozen=True)
class Source:
    """The bytes of one file, read once, and their identity."""

    data: bytes
    identity: FileIdentity

    @property
    def path(self) -> str:
        return self.identity.path
