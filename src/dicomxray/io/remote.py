"""Reading objects by URL through fsspec: one GET per object, retries with backoff, identity from the response.

Every URL (``s3://``, ``gs://``, ``az://``, ``https://``, ``memory://``...)
goes through an fsspec filesystem built with the caller's ``storage_options``;
nothing here speaks a storage protocol itself.  Where the filesystem lets us
see a response's headers (s3fs's ``get_object``, aiohttp's response for
``http(s)``), an object is read with **one GET** whose headers also give its
identity (ETag, Last-Modified, size), so the bytes and their identity cannot
come from two versions.  Other filesystems (gcsfs, adlfs...) use ``info`` then
``cat_file``: two requests.

Errors are sorted once (:func:`dicomxray.io.translate.error_kind`): a missing object is
:class:`SourceFileNotFoundError`, 401/403 or a missing credential
:class:`RemoteAccessError` (never retried); 5xx, 408/429, timeouts and
connection resets are retried with exponential backoff and full jitter, then
:class:`RemoteSourceError`.  Each message names the URL, never a credential.

Clients are not fork-safe (fsspec#835, s3fs#914): :func:`filesystem` keeps one
per process id, so a DataLoader worker forked from a parent that already read
a bucket builds its own instead of sharing the parent's event loop.  The
parent's clients are kept alive, untouched, in a forked child: closing them
there would unregister the parent's sockets from the epoll instance parent and
child share, and the parent's next request on a pooled connection would wait
forever (seen here: a listing after a DataLoader epoch hung until aiohttp's
5-minute timeout).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from ..errors import DicomXrayError, ImageTooLargeError, RemoteSourceError, SourceFileNotFoundError
from .identity import FileIdentity, Source
from .stores import Response, store_for
from .translate import error_kind, missing_extra, reason, translate

__all__ = ["RangedObject", "filesystem", "head_url", "identity_from", "list_objects", "read_url", "retrying"]

T = TypeVar("T")

#: Protocol -> the package that implements it (its extra: :data:`dicomxray.io.translate.EXTRAS`).
PACKAGES: dict[str, str] = {
    "s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs", "abfss": "adlfs",
    "adl": "adlfs", "http": "aiohttp", "https": "aiohttp",
}
#: Attempts per request (the first included) and the first backoff in seconds (doubled each time, full jitter).
ATTEMPTS = 5
BACKOFF_S = 0.1

_JITTER = random.Random()
_LOCK = threading.Lock()
_FILESYSTEMS: dict[tuple[int, str, str], Any] = {}
_INHERITED: list[Any] = []  # a parent's clients in a forked child: never used, never closed

#: URLs read at once per process (each a request in flight: latency, not CPU, bounds them).
URL_THREADS = 16


def _after_fork_in_child() -> None:
    global _LOCK
    _LOCK = threading.Lock()
    _INHERITED.extend(_FILESYSTEMS.values())
    _FILESYSTEMS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ----------------------------------------------------------------------------- filesystems
def protocol_of(url: str) -> str:
    return url.split("://", 1)[0].lower()


def filesystem(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    """This process's fsspec filesystem for ``url``'s protocol and options, and the path it takes.

    Raises
    ------
    MissingExtraError
        The protocol's package is not installed (the message names the extra).
    RemoteSourceError
        fsspec knows no such protocol.
    """
    protocol = protocol_of(url)
    options = dict(storage_options or {})
    key = (os.getpid(), protocol, json.dumps(options, sort_keys=True, default=repr))
    fs = _FILESYSTEMS.get(key)
    if fs is None:
        with _LOCK:
            fs = _FILESYSTEMS.get(key)
            if fs is None:
                fs = _FILESYSTEMS[key] = _new_filesystem(url, protocol, options)
    return fs, fs._strip_protocol(url)


def _new_filesystem(url: str, protocol: str, options: dict[str, Any]) -> Any:
    try:
        import fsspec

        cls = fsspec.get_filesystem_class(protocol)
        return cls(skip_instance_cache=True, **options)
    except ImportError as exc:
        raise missing_extra(PACKAGES.get(protocol) or exc.name or "fsspec", f"reading {protocol}:// URLs",
                            path=url) from None
    except ValueError as exc:
        raise RemoteSourceError(f"{url}: no filesystem for {protocol}:// ({exc})", path=url) from None
    except TypeError as exc:
        raise RemoteSourceError(f"{url}: storage_options not accepted by the {protocol}:// filesystem ({exc})",
                                path=url) from None


# ----------------------------------------------------------------------------- errors and retries
def retrying(call: Callable[[], T], url: str, *, attempts: int = ATTEMPTS, backoff: float = BACKOFF_S) -> T:
    """``call()``, retried with exponential backoff (full jitter) on transient errors.

    Raises
    ------
    SourceFileNotFoundError, RemoteAccessError, SourceChangedError, RemoteSourceError
        Named after the URL; a DicomXrayError from ``call`` passes through.
    """
    for attempt in range(attempts):
        try:
            return call()
        except DicomXrayError:
            raise
        except Exception as exc:  # sorted by error_kind; anything unexpected still names the URL
            if error_kind(exc) != "transient":
                raise translate(exc, url, remote=True) from (exc if error_kind(exc) == "other" else None)
            if attempt == attempts - 1:
                raise RemoteSourceError(f"{url}: {reason(exc)} (gave up after {attempts} attempts)",
                                        path=url) from exc
            time.sleep(_JITTER.uniform(0, backoff * 2**attempt))
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------- identity
def _meta(meta: Mapping[str, Any], *names: str) -> Any:
    for key, value in meta.items():
        if key.lower().replace("-", "").replace("_", "") in names and value not in (None, ""):
            return value
    return None


def _seconds_ns(value: Any) -> int:
    """Last-Modified as whole seconds in ns (a listing and a GET of one version agree to the second)."""
    if value is None:
        return 0
    if isinstance(value, (int, float)):
        return int(value) * 10**9
    if not isinstance(value, datetime):
        text = str(value)
        try:
            value = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            try:
                value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return 0
    return int(value.timestamp()) * 10**9


def identity_from(url: str, meta: Mapping[str, Any], size: int | None = None) -> FileIdentity:
    """The :class:`FileIdentity` of ``url`` from a response's headers or a listing's info.

    ETag first (quotes kept, as the store sends it), else the version id or
    generation; Last-Modified in whole seconds; the size.
    """
    etag = _meta(meta, "etag")
    if etag is None:
        version = _meta(meta, "versionid", "generation")
        etag = f"version:{version}" if version is not None else ""
    if size is None:
        found = _meta(meta, "size", "contentlength")
        size = int(found) if found is not None else -1
    modified = _meta(meta, "lastmodified", "updated", "mtime")
    return FileIdentity(url, size, _seconds_ns(modified), 0, 0, etag=str(etag))


# ----------------------------------------------------------------------------- reads
def _get(url: str, storage_options: Mapping[str, Any] | None, start: int, end: int | None,
         if_match: str | None = None) -> Response:
    fs, path = filesystem(url, storage_options)
    store = store_for(url)

    def call() -> Response:
        try:
            resp = store.get(fs, path, url, start, end, if_match)
        except Exception as exc:
            if error_kind(exc) == "range" and start == 0:  # an empty object has no byte 0
                resp = store.get(fs, path, url, 0, None, if_match)
            else:
                raise
        want = resp.total - start if end is None else min(end, resp.total) - start
        if len(resp.data) < want:
            raise ConnectionResetError(f"short read: {len(resp.data)} of {want} bytes")
        return resp

    return retrying(call, url)


def read_url(url: str, storage_options: Mapping[str, Any] | None, *, max_bytes: int | None = None,
             content_hash: bool = False) -> Source:
    """The whole object with one GET (ranged to ``max_bytes + 1``: a larger object is refused)."""
    resp = _get(url, storage_options, 0, None if max_bytes is None else max_bytes + 1)
    if max_bytes is not None and resp.total > max_bytes:
        raise ImageTooLargeError(f"{url}: object is {resp.total} bytes, more than the configured max_pixels can need",
                                 path=url)
    ident = identity_from(url, resp.meta, resp.total)
    if content_hash:
        ident = replace(ident, sha256=hashlib.sha256(resp.data).hexdigest())
    return Source(resp.data, ident)


def head_url(url: str, storage_options: Mapping[str, Any] | None) -> FileIdentity:
    """The identity of ``url`` from one HEAD request (no body)."""
    fs, path = filesystem(url, storage_options)
    store = store_for(url)
    meta = retrying(lambda: store.head(fs, path, url), url)
    return identity_from(url, meta)


class RangedObject:
    """An object read by byte ranges: the first range at construction, later ones only when asked.

    Every later range is conditional on the first response's ETag (``If-Match``)
    where the store supports it, so the ranges of one read come from one
    version; a change in between raises :class:`SourceChangedError`.
    """

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None, first: int) -> None:
        self.url, self.storage_options = url, storage_options
        resp = _get(url, storage_options, 0, first)
        self.head, self.size = resp.data, resp.total
        self.identity = identity_from(url, resp.meta, resp.total)
        self._etag = self.identity.etag if self.identity.etag and not self.identity.etag.startswith("version:") else None
        self.requests = 1

    def pread(self, n: int, pos: int) -> bytes:
        """``n`` bytes at ``pos`` (fewer at the end of the object): one ranged GET."""
        if pos >= self.size or n <= 0:
            return b""
        self.requests += 1
        return _get(self.url, self.storage_options, pos, min(self.size, pos + n), self._etag).data


# ----------------------------------------------------------------------------- listing
def list_objects(root: str, storage_options: Mapping[str, Any] | None) -> dict[str, FileIdentity | None]:
    """Every object under the URL prefix ``root`` (or ``root`` itself when it is one object): URL -> identity.

    URLs keep ``root``'s spelling (scheme included).  The identity is the
    listing's (ETag, size, Last-Modified) or ``None`` when the listing gives
    none (an HTTP directory page).  Listings are never served from fsspec's
    directory cache.
    """
    fs, path = filesystem(root, storage_options)

    def find() -> dict[str, Any]:
        fs.invalidate_cache(path)
        return dict(fs.find(path, detail=True))

    found = retrying(find, root)
    prefix = path.rstrip("/")
    base = root.rstrip("/")
    out: dict[str, FileIdentity | None] = {}
    for name, info in found.items():
        if info.get("type") == "directory" or name.endswith("/"):
            continue
        if name.rstrip("/") == prefix:  # root is an object
            url = root
        elif name.startswith(prefix + "/"):
            url = f"{base}/{name[len(prefix) + 1:]}"
        else:
            continue
        ident = identity_from(url, info)
        out[url] = None if ident.weak or ident.size < 0 else ident
    if not out:
        try:
            out[root] = head_url(root, storage_options)
        except SourceFileNotFoundError:
            raise SourceFileNotFoundError(f"{root}: no such object or prefix", path=root) from None
    return out

