"""Index rows of objects behind URLs: a ranged prefix, extended only when the header is longer.

The walk of :mod:`dicomxray.index.scan` runs unchanged over a :class:`_RangedBuffer`,
whose refill is one more ranged GET (``If-Match`` the first response's ETag,
so every range comes from one version of the object).  WADO-RS has no byte ranges:
a DICOMweb instance is retrieved whole (one request, its full size) and walked in memory,
so its row equals a local file's; ``/metadata`` would be smaller but holds no Pixel Data
to check ``decodable`` against.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from functools import partial
from typing import Any, BinaryIO

from ..dicom.elements import PREFIX, Buffer
from ..errors import SourceChangedError
from ..io.dicomweb import is_dicomweb, read_instance
from ..io.remote import URL_THREADS, RangedObject
from ..io.source import is_url, locate
from .scan import _error_row, _finish, _read_row, scan_file
from .table import identity_values

__all__ = ["URL_THREADS", "scan_many", "scan_row", "scan_url"]


class _RangedBuffer(Buffer):
    """A :class:`Buffer` over an object: a refill is one more ranged GET, only when the walk needs it."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any, data: bytes, base: int) -> None:
        super().__init__(None, obj.size, data, base)
        self.obj = obj

    def _fetch(self, n: int, pos: int) -> bytes:
        return bytes(self.obj.pread(n, pos))


class _WholeObject:
    """A DICOMweb instance retrieved whole (:func:`dicomxray.io.dicomweb.read_instance`), read as ranges."""

    __slots__ = ("head", "identity", "requests", "size")

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None) -> None:
        source = read_instance(url, storage_options)
        self.head, self.identity, self.size, self.requests = source.data, source.identity, len(source.data), 1

    def pread(self, n: int, pos: int) -> bytes:
        return self.head[pos : pos + n]


class _ObjectReader:
    """An object behind a URL (:class:`dicomxray.io.remote.RangedObject`): its prefix is already read."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def pread(self, n: int, pos: int) -> bytes:
        if pos + n <= len(self.obj.head):
            return bytes(self.obj.head[pos : pos + n])
        return bytes(self.obj.pread(n, pos))

    def buffer(self, size: int, pos: int = 0) -> Buffer:
        head = self.obj.head
        return _RangedBuffer(self.obj, head if pos == 0 else self.obj.pread(PREFIX, pos), pos)

    def open(self) -> BinaryIO:  # pydicom's fallback reads the whole object
        head = self.obj.head
        return io.BytesIO(head + self.obj.pread(self.obj.size - len(head), len(head)))


def scan_url(url: str, *, key: bytes, include_patient: bool = False,
             storage_options: Mapping[str, Any] | None = None, attempts: int = 3) -> dict[str, Any]:
    """One index row of the object at ``url``: a ranged GET of its first :data:`PREFIX` bytes, extended
    only when the header is longer (each later range conditional on the first response's ETag).

    ``size``/``mtime_ns`` are the object's size and Last-Modified, ``inode`` a digest of its ETag
    (:meth:`FileIdentity.row`),
    ``ctime_ns`` 0.  Never raises for a bad object: the row then holds ``error_type`` and ``error``.
    """
    row: dict[str, Any] = identity_values(None)
    for attempt in range(attempts):
        try:
            obj: Any = _WholeObject(url, storage_options) if is_dicomweb(url) else \
                RangedObject(url, storage_options, PREFIX)
            row.update(identity_values(obj.identity))
            row.update(_read_row(_ObjectReader(obj), obj.size))
            break
        except SourceChangedError as exc:  # overwritten between two ranges: read the new version
            if attempt == attempts - 1:
                return _error_row(row, exc)
        except Exception as exc:  # a bad object is a row with its error, never a crash of the whole index
            return _error_row(row, exc)
    return _finish(row, key, include_patient)


def scan_row(path: str, key: bytes, include_patient: bool, columns: tuple[str, ...],
             storage_options: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
    """One index row of ``path`` (:func:`scan_url` for a URL, else :func:`scan_file`), a tuple in ``columns``
    order."""
    if locate(path).remote:
        row = scan_url(path, key=key, include_patient=include_patient, storage_options=storage_options)
    else:
        row = scan_file(path, key=key, include_patient=include_patient)
    return tuple(row.get(c) for c in columns)


def scan_many(paths: list[str], key: bytes, include_patient: bool, columns: tuple[str, ...],
              storage_options: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """:func:`scan_file` (or :func:`scan_url`) over ``paths`` (a worker's chunk), each row a tuple in
    ``columns`` order.  URLs are read :data:`URL_THREADS` at a time."""
    from ..jobs.distributed import run_chunk

    one = partial(scan_row, key=key, include_patient=include_patient, columns=columns, storage_options=storage_options)
    return run_chunk(one, paths, URL_THREADS if paths and is_url(paths[0]) else 1)
