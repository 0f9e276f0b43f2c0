"""DICOMweb as a source: ``dicomweb+http(s)://HOST[:PORT]/PREFIX`` listed by QIDO-RS, read by WADO-RS.

A root names a DICOMweb service (``.../PREFIX``), a study (``.../studies/S``) or a series
(``.../studies/S/series/SE``), optionally with a QIDO-RS query string (``?Modality=CR&StudyDate=2020-2021``,
keys as QIDO-RS takes them); an instance URL (``.../studies/S/series/SE/instances/I``) is one file.
:func:`list_instances` pages ``/instances`` with ``limit``/``offset`` and gives the instances in UID order;
:func:`read_instance` retrieves one with ``Accept: multipart/related; type="application/dicom";
transfer-syntax=*`` (the stored encoding, not a transcode).

Requests go through this process's aiohttp session of :func:`dicomxray.io.remote.filesystem` (fork-safe,
one per process) and :func:`~dicomxray.io.remote.retrying` (5xx, 408/429, timeouts and dropped connections
retried with backoff; errors sorted by :mod:`dicomxray.io.translate`).  Credentials come from
``storage_options={"headers": {...}}`` or ``{"headers": callable}`` (called before each request, so a token
that expires during a run is renewed); they are never part of a message.

Identity: a SOP Instance UID names one instance, which DICOM does not let change (a lossy transcode must
get a new UID), so an instance URL, which holds its Study, Series and SOP Instance UIDs, is its strong
identity (:func:`instance_identity`: ``etag="dicomweb:<SOP Instance UID>"``, size unknown, -1).  A listing
carries it for every instance, so a cached read needs no request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import ImageTooLargeError, RemoteSourceError, SourceFileNotFoundError
from .identity import DICOMWEB_SCHEMES, IMMUTABLE_PREFIX, FileIdentity, Source, is_dicomweb

__all__ = ["ACCEPT", "PAGE", "DicomWebUrl", "check_instance", "instance_identity", "is_dicomweb", "list_instances", "parse",
           "read_instance", "relative_name"]

#: What WADO-RS is asked for: the instance as stored (``transfer-syntax=*``); without it a server transcodes.
ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
#: Instances asked for per QIDO-RS page (a server may cap it lower: paging goes on until an empty page).
PAGE = 1000
_PATH = re.compile(r"^(?P<prefix>.*?)(?:/studies/(?P<study>[^/]+)(?:/series/(?P<series>[^/]+)"
                   r"(?:/instances/(?P<instance>[^/]+))?)?)?/*$")
_STUDY, _SERIES, _SOP, _SYNTAX = "0020000D", "0020000E", "00080018", "00083002"
_RESERVED = frozenset({"limit", "offset"})


@dataclass(frozen=True)
class DicomWebUrl:
    """A DICOMweb URL taken apart: the service (``dicomweb+http://host/prefix``), the UIDs it names, its query."""

    scheme: str
    service: str  # the http(s):// URL of the service root, no trailing slash
    study: str | None = None
    series: str | None = None
    instance: str | None = None
    query: tuple[tuple[str, str], ...] = ()

    @property
    def root(self) -> str:
        """The service as a ``dicomweb+`` URL (what instance names are relative to)."""
        return f"{self.scheme}{self.service[self.service.index('://'):]}"

    def instance_url(self, study: str, series: str, sop: str) -> str:
        """The ``dicomweb+`` URL of one instance of this service."""
        return f"{self.root}/studies/{study}/series/{series}/instances/{sop}"

    def http(self, *, instances: bool = False) -> str:
        """The http(s) URL of what this names (its ``/instances`` search resource with ``instances``)."""
        url = self.service
        if self.study:
            url += f"/studies/{self.study}"
            if self.series:
                url += f"/series/{self.series}"
                if self.instance and not instances:
                    url += f"/instances/{self.instance}"
        return url + "/instances" if instances else url


def parse(url: str) -> DicomWebUrl:
    """``url`` taken apart (``ValueError`` for another scheme, a series without a study, or ``limit``/``offset``
    in the query: paging is the lister's)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in DICOMWEB_SCHEMES:
        raise ValueError(f"{url}: not a dicomweb+http(s):// URL")
    parts = urlsplit("//" + url[len(scheme) + 3:])
    m = _PATH.match(parts.path)
    if m is None:  # the pattern matches any path; kept for the type checker
        raise ValueError(f"{url}: not a DICOMweb path")
    query = tuple(parse_qsl(parts.query, keep_blank_values=True))
    reserved = sorted({k for k, _ in query if k.lower() in _RESERVED})
    if reserved:
        raise ValueError(f"{url}: {', '.join(reserved)} in the query; the listing pages itself")
    service = f"{scheme.split('+', 1)[1]}://{parts.netloc}{m.group('prefix')}"
    return DicomWebUrl(scheme, service, m.group("study"), m.group("series"), m.group("instance"), query)


def relative_name(url: str) -> str:
    """``Study/Series/SOP`` of an instance URL (what an export is laid out by)."""
    where = parse(url)
    return f"{where.study}/{where.series}/{where.instance}"


def instance_identity(url: str) -> FileIdentity:
    """The identity of the instance ``url`` names: its UIDs (strong; no request)."""
    where = parse(url)
    if where.instance is None or where.series is None:
        raise ValueError(f"{url}: not an instance URL (.../studies/S/series/SE/instances/I)")
    return FileIdentity(url, -1, 0, 0, 0, etag=f"{IMMUTABLE_PREFIX}{where.instance}")


# ----------------------------------------------------------------------------- requests
def _options(storage_options: Mapping[str, Any] | None) -> tuple[dict[str, Any], Any]:
    """(the filesystem's options, the headers or their callable)."""
    options = dict(storage_options or {})
    return options, options.pop("headers", None)


def _get(name: str, http_url: str, storage_options: Mapping[str, Any] | None, accept: str,
         params: list[tuple[str, str]] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One GET of ``http_url`` (retried as every URL read); errors name ``name``, never a header."""
    from fsspec.asyn import sync

    from .remote import filesystem, retrying

    options, headers = _options(storage_options)
    fs, _ = filesystem(http_url, options)

    async def go() -> tuple[int, dict[str, str], bytes]:
        import aiohttp

        given = headers() if callable(headers) else headers
        kw = {k: v for k, v in fs.kwargs.items() if k != "headers"}
        sent = {**dict(given or {}), "Accept": accept, "Accept-Encoding": "identity"}
        session = await fs.set_session()
        async with session.get(http_url, params=params, headers=sent, **kw) as r:
            if r.status >= 400:
                raise aiohttp.ClientResponseError(r.request_info, r.history, status=r.status, message=r.reason or "")
            return r.status, dict(r.headers), await r.read()

    def call() -> tuple[int, dict[str, str], bytes]:
        return sync(fs.loop, go)  # type: ignore[no-any-return]

    return retrying(call, name)


def _value(item: Mapping[str, Any], tag: str) -> str | None:
    values = (item.get(tag) or {}).get("Value") or []
    return str(values[0]) if values and values[0] not in (None, "") else None


def list_instances(root: str, storage_options: Mapping[str, Any] | None = None, *,
                   page: int | None = None) -> dict[str, FileIdentity]:
    """Every instance under the DICOMweb ``root`` that its query matches: instance URL -> identity, in
    (Study, Series, SOP Instance UID) order.

    QIDO-RS ``/instances`` paged with ``limit``/``offset``: a page shorter than the first one (or empty) is
    the last; a first page shorter than asked (a server's own cap, or the end) is followed by one more
    request; a page with no instance not seen before ends it too (a server that ignores ``offset``).  An
    instance URL as ``root`` is checked with one search for its UID.

    Raises
    ------
    SourceFileNotFoundError
        ``root`` names an instance that is not there.
    RemoteAccessError, RemoteSourceError
        401/403; the server down or failing after retries, or not answering DICOM JSON.
    """
    where = parse(root)
    limit = page or PAGE
    base = [(k, v) for k, v in where.query]
    if where.instance is not None:
        base.append(("SOPInstanceUID", where.instance))
    base += [("includefield", tag) for tag in (_STUDY, _SERIES, _SOP)]
    search = where.http(instances=True)
    found: dict[tuple[str, str, str], str] = {}
    cap, offset = limit, 0
    while True:
        status, _, body = _get(root, search, storage_options, "application/dicom+json",
                               [*base, ("limit", str(limit)), ("offset", str(offset))])
        try:
            items = json.loads(body) if status != 204 and body.strip() else []
        except ValueError:
            raise RemoteSourceError(f"{root}: the QIDO-RS answer is not DICOM JSON", path=root) from None
        if not isinstance(items, list):
            raise RemoteSourceError(f"{root}: the QIDO-RS answer is not a list of instances", path=root)
        before = len(found)
        for item in items:
            study = _value(item, _STUDY) or where.study
            series = _value(item, _SERIES) or where.series
            sop = _value(item, _SOP)
            if study and series and sop:
                found[(study, series, sop)] = where.instance_url(study, series, sop)
        n, offset = len(items), offset + len(items)
        if n == 0 or (n < cap and offset > n) or len(found) == before:  # the end (or a server ignoring offset)
            break
        cap = min(cap, n)
    if where.instance is not None and not found:
        raise SourceFileNotFoundError(f"{root}: SOP Instance {where.instance} is not on the server", path=root)
    return {url: instance_identity(url) for _, url in sorted(found.items())}


def _first_part(body: bytes, content_type: str, name: str) -> bytes:
    """The first body part of a ``multipart/related`` answer (the answer itself when it is not multipart)."""
    m = re.search(r'boundary="?([^";]+)"?', content_type, re.I)
    if not content_type.lower().startswith("multipart/") or m is None:
        return body
    delimiter = b"--" + m.group(1).strip().encode()
    start = body.find(delimiter)
    head_end = body.find(b"\r\n\r\n", start)
    if start < 0 or head_end < 0:
        raise RemoteSourceError(f"{name}: a multipart answer without a part", path=name)
    headers = body[start + len(delimiter):head_end].decode("latin-1")
    data_start = head_end + 4
    length = re.search(r"^content-length:\s*(\d+)\s*$", headers, re.I | re.M)
    if length is not None and data_start + int(length.group(1)) <= len(body):
        return body[data_start:data_start + int(length.group(1))]
    end = body.find(b"\r\n" + delimiter, data_start)
    if end < 0:
        raise RemoteSourceError(f"{name}: the multipart answer was cut short", path=name)
    return body[data_start:end]


def read_instance(url: str, storage_options: Mapping[str, Any] | None = None, *, max_bytes: int | None = None,
                  content_hash: bool = False) -> Source:
    """The instance ``url`` names, as stored (one WADO-RS retrieve), and its identity.

    Raises
    ------
    SourceFileNotFoundError
        The instance is not (or no longer) on the server; the message names its SOP Instance UID.
    ImageTooLargeError
        It is larger than ``max_bytes``.
    RemoteAccessError, RemoteSourceError
        401/403; the server down or failing after retries.
    """
    import hashlib
    from dataclasses import replace

    ident = instance_identity(url)
    where = parse(url)
    try:
        _, headers, body = _get(url, where.http(), storage_options, ACCEPT)
    except SourceFileNotFoundError:
        raise SourceFileNotFoundError(f"{url}: SOP Instance {where.instance} is not on the server (gone since "
                                      "it was listed?)", path=url) from None
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    data = _first_part(body, content_type, url)
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageTooLargeError(f"{url}: instance is {len(data)} bytes, more than the configured max_pixels can "
                                 "need", path=url)
    if content_hash:
        ident = replace(ident, sha256=hashlib.sha256(data).hexdigest())
    return Source(data, ident)


def check_instance(url: str, storage_options: Mapping[str, Any] | None = None) -> FileIdentity:
    """The identity of the instance ``url`` after one QIDO-RS search confirms it is there
    (``SourceFileNotFoundError`` naming its SOP Instance UID when not)."""
    ident = instance_identity(url)  # an instance URL, or ValueError before any request
    list_instances(url, storage_options)
    return ident
