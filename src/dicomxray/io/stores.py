"""One request per object, per filesystem: the data-driven table of how to GET (bytes and headers) and HEAD.

s3fs's ``get_object``/``head_object`` (through s3fs's own client and retries)
and aiohttp's response (through fsspec's HTTP session) give the headers with
the bytes, so one GET yields both an object and its identity; any other
fsspec filesystem (gcsfs, adlfs, memory...) is read with ``info`` then
``cat_file``.  Adding a store is adding a row to :data:`STORES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["STORES", "Response", "Store", "store_for"]


@dataclass(frozen=True)
class Response:
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


async def _s3_get(fs: Any, path: str, start: int, end: int | None, if_match: str | None) -> Response:
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
    return Response(data, {k: resp.get(k) for k in ("ETag", "LastModified", "VersionId")}, total)


async def _s3_head(fs: Any, path: str) -> dict[str, Any]:
    bucket, key, version = fs.split_path(path)
    resp = await fs._call_s3("head_object", Bucket=bucket, Key=key, **({"VersionId": version} if version else {}))
    return {"ETag": resp.get("ETag"), "LastModified": resp.get("LastModified"), "VersionId": resp.get("VersionId"),
            "size": resp.get("ContentLength")}


def _http_options(fs: Any, extra: dict[str, str]) -> dict[str, Any]:
    kw = dict(fs.kwargs)
    kw["headers"] = {**(kw.get("headers") or {}), "Accept-Encoding": "identity", **extra}
    return kw


async def _http_get(fs: Any, url: str, start: int, end: int | None, if_match: str | None) -> Response:
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
    return Response(data, headers, total)


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
class Store:
    """How to GET (with headers) and HEAD one object on a filesystem."""

    get: Callable[[Any, str, str, int, int | None, str | None], Response]
    head: Callable[[Any, str, str], dict[str, Any]]


def _generic_get(fs: Any, path: str, url: str, start: int, end: int | None, if_match: str | None) -> Response:
    fs.invalidate_cache(path)
    info = fs.info(path)
    data = fs.cat_file(path, start=start or None, end=end)
    return Response(data, dict(info), int(info.get("size") or len(data)))


def _generic_head(fs: Any, path: str, url: str) -> dict[str, Any]:
    fs.invalidate_cache(path)
    return dict(fs.info(path))


_S3 = Store(get=lambda fs, path, url, s, e, m: _run(fs, _s3_get, fs, path, s, e, m),
             head=lambda fs, path, url: _run(fs, _s3_head, fs, path))
_HTTP = Store(get=lambda fs, path, url, s, e, m: _run(fs, _http_get, fs, url, s, e, m),
               head=lambda fs, path, url: _run(fs, _http_head, fs, url))
#: Filesystems read with one GET whose headers give the identity; any other uses ``info`` + ``cat_file``.
STORES: dict[str, Store] = {"s3": _S3, "s3a": _S3, "http": _HTTP, "https": _HTTP}
_GENERIC = Store(get=_generic_get, head=_generic_head)


def store_for(url: str) -> Store:
    """How to GET and HEAD ``url``'s objects (:data:`STORES`, else ``info`` + ``cat_file``)."""
    return STORES.get(url.split("://", 1)[0].lower(), _GENERIC)
