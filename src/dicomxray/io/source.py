"""Opening a source: one consistent read of the bytes, and the file's identity.

A source is a local path or a URL (``s3://``, ``gs://``, ``az://``,
``https://``...; ``file://`` is a local path; a ``dicomweb+http(s)://`` instance
is retrieved by WADO-RS, :mod:`dicomxray.io.dicomweb`).  URLs are read through fsspec
by :mod:`dicomxray.io.remote` (one GET per object, retries with backoff) with
the caller's ``storage_options``; fsspec is imported only when a URL is read.

The identity travels with the bytes through the pipeline, so the cache
compares what was actually read instead of statting or hashing again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ImageTooLargeError, SourceChangedError
from .identity import FileIdentity, Source, is_dicomweb, is_url, local_path
from .translate import translate

__all__ = ["FileIdentity", "Location", "Opener", "Source", "file_identity", "is_url", "local_path", "locate", "read_source"]


@dataclass(frozen=True)
class Location:
    """A source classified once: a local path (absolute, ``~`` and ``file://`` resolved) or a URL.

    :func:`locate` (and :meth:`Opener.locate`) is where a path is classified; everything that is handed a
    ``Location`` reads it without asking again.
    """

    path: str
    remote: bool

    def __str__(self) -> str:
        return self.path


def locate(path: str | os.PathLike[str] | Location) -> Location:
    """``path`` classified: a URL (any ``scheme://`` but ``file://``) or a resolved local path."""
    if isinstance(path, Location):
        return path
    if is_url(path):
        return Location(str(path), True)
    return Location(os.path.abspath(os.path.expanduser(local_path(path))), False)


def file_identity(path: str | os.PathLike[str] | Location, *,
                  storage_options: Mapping[str, Any] | None = None) -> FileIdentity:
    """The stat :class:`FileIdentity` of ``path`` (no read), or ``SourceFileNotFoundError``.

    For a URL: one HEAD request (ETag, Last-Modified, size).
    """
    where = locate(path)
    if where.remote and is_dicomweb(where.path):  # one QIDO-RS search: the instance is still there
        from .dicomweb import check_instance

        return check_instance(where.path, storage_options)
    if where.remote:
        from .remote import head_url

        return head_url(where.path, storage_options)
    try:
        return FileIdentity.of_stat(where.path, os.stat(where.path))
    except OSError as exc:  # a vanished file, permissions, a symlink loop...: one map, named
        raise translate(exc, where.path, doing="stat") from None


def read_source(
    path: str | os.PathLike[str] | Location, *, max_bytes: int | None = None, content_hash: bool = False,
    attempts: int = 3, storage_options: Mapping[str, Any] | None = None,
) -> Source:
    """Read the whole file with one ``read``; retry if it changed in place meanwhile.

    ``fstat`` on the open descriptor before and after the read must agree: a
    file rewritten while we read it would otherwise give a mixed image.  A
    file replaced by rename is safe by construction (we hold the old inode).
    Files larger than ``max_bytes`` are refused before they are read.

    A URL is read with one GET (ranged to ``max_bytes + 1`` so a huge object is
    refused after that many bytes), its identity taken from the same response;
    transient errors are retried with backoff (:mod:`dicomxray.io.remote`).
    """
    where = locate(path)
    if where.remote and is_dicomweb(where.path):  # one WADO-RS retrieve (:mod:`dicomxray.io.dicomweb`)
        from .dicomweb import read_instance

        return read_instance(where.path, storage_options, max_bytes=max_bytes, content_hash=content_hash)
    if where.remote:
        from .remote import read_url

        return read_url(where.path, storage_options, max_bytes=max_bytes, content_hash=content_hash)
    p = where.path
    for _ in range(attempts):
        try:
            with open(p, "rb") as fh:
                before = os.fstat(fh.fileno())
                if max_bytes is not None and before.st_size > max_bytes:
                    raise ImageTooLargeError(
                        f"{p}: file is {before.st_size} bytes, more than the configured max_pixels can need", path=p)
                data = fh.read()
                after = os.fstat(fh.fileno())
        except OSError as exc:  # missing, a directory, permissions, a symlink loop, EIO, EMFILE...: named, skippable
            raise translate(exc, p) from None
        ident = FileIdentity.of_stat(p, before)
        # Content changes show in size and mtime; the inode's ctime also moves when a rename replaces the
        # file meanwhile (its link count drops), which leaves the bytes we hold intact.
        if (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns) == (len(data), before.st_mtime_ns):
            if content_hash:
                ident = replace(ident, sha256=hashlib.sha256(data).hexdigest())
            return Source(data, ident)
    raise SourceChangedError(f"{p}: file kept changing while being read ({attempts} attempts)", path=p)


@dataclass(frozen=True, eq=False)
class Opener:
    """Where a pipeline's bytes come from: local paths, and URLs with ``storage_options``.

    ``listed`` maps URLs to the identity a listing gave (ETag, size,
    Last-Modified): :meth:`identity` then needs no request.  A data set built
    from a bucket listing is that listing; an object overwritten after it is
    read afresh on a cache miss (the GET's own identity differs, so nothing is
    stored under the listed one) and seen by the next listing.  Cheap to
    pickle; holds no client (each process builds its own, after fork).
    """

    storage_options: Mapping[str, Any] | None = field(default=None, repr=False)
    listed: Mapping[str, FileIdentity] | None = field(default=None, repr=False)

    def locate(self, path: str | os.PathLike[str] | Location) -> Location:
        """:func:`locate`: the one place a path is classified as local or URL."""
        return locate(path)

    def read(self, path: str | os.PathLike[str] | Location, *, max_bytes: int | None = None,
             content_hash: bool = False) -> Source:
        """:func:`read_source` with this opener's storage options."""
        return read_source(path, max_bytes=max_bytes, content_hash=content_hash,
                           storage_options=self.storage_options)

    def identity(self, path: str | os.PathLike[str] | Location) -> FileIdentity:
        """The listed identity of a URL, else :func:`file_identity` (a stat, or a HEAD request)."""
        where = locate(path)
        if self.listed and where.remote:
            known = self.listed.get(where.path)
            if known is not None:
                return known
        return file_identity(where, storage_options=self.storage_options)
