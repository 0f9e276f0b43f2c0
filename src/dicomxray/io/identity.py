"""What identifies a source's content, and the bytes read once with that identity: plain values shared by
local reads (:mod:`dicomxray.io.source`) and URL reads (:mod:`dicomxray.io.remote`)."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass

__all__ = ["DICOMWEB_SCHEMES", "IMMUTABLE_PREFIX", "FileIdentity", "Source", "is_dicomweb", "is_url", "local_path"]

#: The ``etag`` prefix of identities that name bytes that never change (a DICOMweb instance: its SOP Instance UID).
IMMUTABLE_PREFIX = "dicomweb:"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def is_url(path: object) -> bool:
    """Whether ``path`` is a URL read through fsspec (any ``scheme://`` but ``file://``)."""
    if not isinstance(path, str):
        return False
    m = _SCHEME.match(path)
    return m is not None and m.group(1).lower() != "file"


#: The schemes of DICOMweb roots (:mod:`dicomxray.io.dicomweb` reads them).
DICOMWEB_SCHEMES = ("dicomweb+http", "dicomweb+https")


def is_dicomweb(path: object) -> bool:
    """Whether ``path`` is a ``dicomweb+http(s)://`` URL (a kind of URL: :func:`is_url` holds too)."""
    return isinstance(path, str) and path.split("://", 1)[0].lower() in DICOMWEB_SCHEMES


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

    @classmethod
    def of_stat(cls, path: str, st: os.stat_result) -> FileIdentity:
        """The identity of the local file ``path`` whose ``os.stat`` (or ``os.fstat`` of an open descriptor) is
        ``st``."""
        return cls(path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    def token(self, content: bool = False) -> str:
        """THE answer to "is this input unchanged?": equal tokens mean the same content, for every consumer
        (the cache key, the export stamp, a Dask manifest's shard names, the incremental index through
        :meth:`row`).

        Parameters
        ----------
        content : bool
            Give the content hash (a cache whose identity is ``"content"``); the identity must have been
            read with ``content_hash=True``.

        Returns
        -------
        str
            The path and every :meth:`row` field (size, mtime, inode, ctime; for a URL its ETag too), or the
            SHA-256.  A weak identity's token is new at every call: it never equals another.
        """
        if content:
            if not self.sha256:
                raise ValueError(f"{self.path}: a content token needs the bytes' hash (read with content_hash=True)")
            return self.sha256
        if self.weak:
            return f"{self.path}\0weak\0{uuid.uuid4().hex}"
        return "\0".join([self.path, *map(str, self.row()), self.etag])

    def row(self) -> tuple[int, int, int, int]:
        """``(size, mtime_ns, inode, ctime_ns)``: the identity an index row records.

        For a URL, ``inode`` is 63 bits of a digest of its ETag (0 without one), so an object overwritten
        within the same second and size still differs, and ``ctime_ns`` is 0.
        """
        inode = self.inode
        if self.etag and is_url(self.path):
            inode = int.from_bytes(hashlib.sha256(self.etag.encode()).digest()[:8], "big") >> 1
        return (self.size, self.mtime_ns, inode, self.ctime_ns)

    @property
    def versioned(self) -> bool:
        """Whether the identity carries a strong version token: an ``etag`` that changes whenever the bytes do
        (an S3 ETag or VersionId, a GCS generation, an Azure ETag; a lister of another store may put its own
        token there, a DICOM SOP Instance UID say).  A weak HTTP validator (``W/"..."``) is not one.  A listing
        entry that is versioned identifies the object's bytes without asking the store again."""
        return bool(self.etag) and not self.etag.startswith("W/")

    @property
    def immutable(self) -> bool:
        """Whether the identity names bytes that never change: a DICOM SOP Instance UID from a DICOMweb listing
        (``etag="dicomweb:<UID>"``; DICOM does not let an instance's content change under its UID)."""
        return self.etag.startswith(IMMUTABLE_PREFIX)

    @property
    def weak(self) -> bool:
        """A URL identity with neither ETag nor Last-Modified: size alone cannot tell versions apart."""
        return not self.etag and not self.mtime_ns and is_url(self.path)

    def same_stat(self, other: FileIdentity) -> bool:
        """Whether both identities have one :meth:`token` (never for a weak one)."""
        return self.token() == other.token()


@dataclass(frozen=True)
class Source:
    """The bytes of one file, read once, and their identity."""

    data: bytes
    identity: FileIdentity

    @property
    def path(self) -> str:
        return self.identity.path
