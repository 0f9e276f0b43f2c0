"""Reading objects by URL through fsspec: one GET per object, retries with backoff, identity from the response.

Every URL (``s3://``, ``gs://``, ``az://``, ``https://``, ``memory://``...)
goes through an fsspec filesystem built with the caller's ``storage_options``;
nothing here speaks a storage protocol itself.  Where the filesystem lets us
see a response's headers (s3fs's ``get_object``, aiohttp's response for
``http(s)``), an object is read with **one GET** whose headers also give its
identity (ETag, Last-Modified, size), so the bytes and their identity cannot
come from two versions.  Other filesystems (gcsfs, adlfs...) use ``info`` then
``cat_file``: two requests.

Errors are sorted once (:func:`_kind`): a missing object is
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
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from ._source import FileIdentity, Source
from .errors import (
    DicomXrayError,
    ImageTooLargeError,
    MissingExtraError,
    RemoteAccessError,
    RemoteSourceError,
    SourceChangedError,
    SourceFileNotFoundError,
)

__all__ = ["RangedObject", "filesystem", "head_url", "identity_from", "list_objects", "read_url", "retrying"]

T = TypeVar("T")

#: Protocol -> (package that implements it, the dicomxray extra that installs it).
EXTRAS: dict[str, tuple[str, str]] = {
    "s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"), "abfs": ("adlfs", "azure"), "abfss": ("adlfs", "azure"), "adl": ("adlfs", "azure"),
    "http": ("aiohttp", "http"), "https": ("aiohttp", "http"),
}
#: Attempts per request (the first included) and the first backoff in seconds (doubled each time, full jitter).
ATTEMPTS = 5
BACKOFF_S = 0.1

_TRANSIENT_NAMES = frozenset({
    "ClientConnectionError", "ClientPayloadError", "ServerDisconnectedError", "ClientOSError", "EndpointConnectionError",
    "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError", "HTTPClientError", "IncompleteRead",
    "FSTimeoutError", "ResponseParserError", "ResponseStreamingError"})
_DENIED_NAMES = frozenset({"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError",
                           "NoAuthTokenError", "ClientAuthenticationError", "DefaultCredentialsError", "RefreshError"})
_TRANSIENT_CODES = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling",
                              "RequestTimeTooSkewed"})
_JITTER = random.Random()
_LOCK = threading.Lock()
_FILESYSTEMS: dict[tuple[int, str, str], Any] = {}
_INHERITED: list[Any] = []  # a parent's clients in a forked child: never used, never closed


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
    package, extra = EXTRAS.get(protocol, (None, None))
    try:
        import fsspec

        cls = fsspec.get_filesystem_class(protocol)
        return cls(skip_instance_cache=True, **options)
    except ImportError as exc:
        hint = f'pip install "dicomxray[{extra}]" ({package})' if extra else f"install the fsspec implementation ({exc})"
        raise MissingExtraError(f"{url}: reading {protocol}:// URLs needs {package or 'a package'}: {hint}",
                                path=url) from None
    except ValueError as exc:
        raise RemoteSourceError(f"{url}: no filesystem for {protocol}:// ({exc})", path=url) from None
    except TypeError as exc:
        raise RemoteSourceError(f"{url}: storage_options not accepted by the {protocol}:// filesystem ({exc})",
                                path=url) from None


# ----------------------------------------------------------------------------- errors and retries
def _status(exc: BaseException) -> tuple[int | None, str]:
    """(HTTP status, error code) of an aiohttp or botocore error, when it carries one."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        meta = response.get("ResponseMetadata") or {}
        code = str((response.get("Error") or {}).get("Code") or "")
        return meta.get("HTTPStatusCode"), code
    status = getattr(exc, "status", None)
    return (status if isinstance(status, int) else None), ""


def _kind(exc: BaseException) -> str:
    """``missing``, ``denied``, ``changed``, ``range``, ``transient`` or ``other``."""
    names = {c.__name__ for c in type(exc).__mro__}
    status, code = _status(exc)
    if names & _DENIED_NAMES or status in (401, 403) or code in ("AccessDenied", "InvalidAccessKeyId"):
        return "denied"
    if status in (404, 410) or code in ("NoSuchKey", "NoSuchBucket") or isinstance(exc, FileNotFoundError):
        return "missing"
    if status == 412 or code == "PreconditionFailed":
        return "changed"
    if status == 416 or code == "InvalidRange":
        return "range"
    if (status is not None and (status >= 500 or status in (408, 429))) or code in _TRANSIENT_CODES:
        return "transient"
    if isinstance(exc, PermissionError):
        return "denied"
    if isinstance(exc, (TimeoutError, ConnectionError)) or names & _TRANSIENT_NAMES:
        return "transient"
    if exc.__cause__ is not None and exc.__cause__ is not exc:  # s3fs wraps a ClientError in OSError(EIO)
        return _kind(exc.__cause__)
    return "other"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


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
        except Exception as exc:  # sorted by _kind; anything unexpected still names the URL
            kind = _kind(exc)
            if kind == "missing":
                raise SourceFileNotFoundError(f"{url}: no such object ({_reason(exc)})", path=url) from None
            if kind == "denied":
                raise RemoteAccessError(f"{url}: access denied or no credential ({_reason(exc)}); check the "
                                        "storage_options / credentials", path=url) from None
            if kind == "changed":
                raise SourceChangedError(f"{url}: the object changed while being read", path=url) from None
            if kind != "transient":
                raise RemoteSourceError(f"{url}: {_reason(exc)}", path=url) from exc
            if attempt == attempts - 1:
                raise RemoteSourceError(f"{url}: {_reason(exc)} (gave up after {attempts} attempts)",
                                        path=url) from exc
            time.sleep(_JITTER.uniform(0, backoff * 2**attempt))
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------- one request per object
@dataclass(frozen=True)
class _Response:
    data: bytes
    meta: dict[str, Any]  # headers / object info: ETag, Last-Modified, version...
    total: int  # the whole object's size


def _range_total(content_range: Any) -> int | None:
    """Total size from ``bytes 0-99/1234`` (or ``bytes */1234``)."""
    if not content_range:
        return None
    tail = str(content_range).rpartition("/")[2].strip()
    return int(tail) if tail.isdigit() else None


def _run(fs: Any, coroutine: Callable[..., Any], *args: Any) -> Any:
    from fsspec.asyn import sync

    return sync(fs.loop, coroutine, *args)


async def _s3_get(fs: Any, path: str, start: int, end: int | None, if_match: str | None) -> _Response:
    bucket, key, version = fs.split_path(path)
    kw: dict[str, Any] = {"VersionId": version} if version else {}
    if start or end is not None:
        kw["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
    if if_match:
        kw["IfMatch"] = if_match
    resp = await fs._call_s3("get_object", Bucket=bucket, Key=key, **kw)
    body = resp["Body"]
    try:
        data = await body.read()
    finally:
        body.close()
    total = _range_total(resp.get("ContentRange")) or int(resp.get("ContentLength", len(data)))
    return _Response(data, {k: resp.get(k) for k in ("ETag", "LastModified", "VersionId")}, total)


async def _s3_head(fs: Any, path: str) -> dict[str, Any]:
    bucket, key, version = fs.split_path(path)
    resp = await fs._call_s3("head_object", Bucket=bucket, Key=key, **({"VersionId": version} if version else {}))
    return {"ETag": resp.get("ETag"), "LastModified": resp.get("LastModified"), "VersionId": resp.get("VersionId"),
            "size": resp.get("ContentLength")}


def _http_options(fs: Any, extra: dict[str, str]) -> dict[str, Any]:
    kw = dict(fs.kwargs)
    kw["headers"] = {**(kw.get("headers") or {}), "Accept-Encoding": "identity", **extra}
    return kw


async def _http_get(fs: Any, url: str, start: int, end: int | None, if_match: str | None) -> _Response:
    import aiohttp

    extra = {"Range": f"bytes={start}-{'' if end is None else end - 1}"} if start or end is not None else {}
    if if_match:
        extra["If-Match"] = if_match
    session = await fs.set_session()
    async with session.get(url, **_http_options(fs, extra)) as r:
        if r.status >= 400:
            raise aiohttp.ClientResponseError(r.request_info, r.history, status=r.status, message=r.reason or "")
        data = await r.read()
        headers = dict(r.headers)
    if r.status == 206:
        total = _range_total(headers.get("Content-Range")) or len(data)
    else:  # the server ignored the Range: the whole object came
        total = len(data)
        data = data[start:end]
    return _Response(data, headers, total)


async def _http_head(fs: Any, url: str) -> dict[str, Any]:
    import aiohttp

    session = await fs.set_session()
    async with session.head(url, allow_redirects=True, **_http_options(fs, {})) as r:
        if r.status >= 400:
            raise aiohttp.ClientResponseError(r.request_info, r.history, status=r.status, message=r.reason or "")
        headers = dict(r.headers)
    headers["size"] = int(headers["Content-Length"]) if "Content-Length" in headers else None
    return headers


@dataclass(frozen=True)
class _Store:
    """How to GET (with headers) and HEAD one object on a filesystem."""

    get: Callable[[Any, str, str, int, int | None, str | None], _Response]
    head: Callable[[Any, str, str], dict[str, Any]]


def _generic_get(fs: Any, path: str, url: str, start: int, end: int | None, if_match: str | None) -> _Response:
    fs.invalidate_cache(path)
    info = fs.info(path)
    data = fs.cat_file(path, start=start or None, end=end)
    return _Response(data, dict(info), int(info.get("size") or len(data)))


def _generic_head(fs: Any, path: str, url: str) -> dict[str, Any]:
    fs.invalidate_cache(path)
    return dict(fs.info(path))


_S3 = _Store(get=lambda fs, path, url, s, e, m: _run(fs, _s3_get, fs, path, s, e, m),
             head=lambda fs, path, url: _run(fs, _s3_head, fs, path))
_HTTP = _Store(get=lambda fs, path, url, s, e, m: _run(fs, _http_get, fs, url, s, e, m),
               head=lambda fs, path, url: _run(fs, _http_head, fs, url))
#: Filesystems read with one GET whose headers give the identity; any other uses ``info`` + ``cat_file``.
STORES: dict[str, _Store] = {"s3": _S3, "s3a": _S3, "http": _HTTP, "https": _HTTP}
_GENERIC = _Store(get=_generic_get, head=_generic_head)


def _store(url: str) -> _Store:
    return STORES.get(protocol_of(url), _GENERIC)


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
         if_match: str | None = None) -> _Response:
    fs, path = filesystem(url, storage_options)
    store = _store(url)

    def call() -> _Response:
        try:
            resp = store.get(fs, path, url, start, end, if_match)
        except Exception as exc:
            if _kind(exc) == "range" and start == 0:  # an empty object has no byte 0
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
    store = _store(url)
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

