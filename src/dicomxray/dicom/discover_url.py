"""Finding DICOM objects under a URL prefix: one listing, then ranged sniffs only where the name says nothing.

The same rules as :mod:`dicomxray.dicom.discover` for a folder: ``.dcm``/``.dicom``
are taken without a request; any other object is classified by its first
512 bytes (one ranged GET, many at once); a ``DICOMDIR`` object is read whole
and its references are resolved against the listing (case-insensitively on a
miss); hidden names (a path component starting with ``.``) are ignored.  The
listing's identities (ETag, size, Last-Modified) come along, so a data set
built from it needs no HEAD request per read.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import DicomXrayError, LoaderWarning, RemoteAccessError, RemoteSourceError
from ..io.dicomweb import is_dicomweb, list_instances, parse
from ..io.remote import RangedObject, list_objects, read_url
from ..io.source import FileIdentity, is_url
from .dicomdir import url_references
from .discover import DICOM_EXTENSIONS, SKIP_KINDS
from .sniff import SNIFF_BYTES, Kind, classify

__all__ = ["RemoteDiscovery", "discover_url", "is_url_source", "relist", "url_sources"]

#: Concurrent sniffing requests (object stores answer in 20-100 ms; a listing of unnamed files needs many).
SNIFF_THREADS = 32


@dataclass(frozen=True)
class RemoteDiscovery:
    """What :func:`dicomxray.index.discover_url` found under the URL prefix ``root``.

    ``files`` are URLs sorted by their path relative to ``base`` (``root``, or
    its folder when ``root`` is one object); ``identities`` the listing's
    identity of each file that has one (not an HTTP directory page's); the
    other fields as in :class:`dicomxray.index.Discovery`.
    """

    root: str
    base: str
    files: list[str]
    skipped: int
    identities: dict[str, FileIdentity] = field(default_factory=dict, repr=False)
    skipped_examples: tuple[str, ...] = ()
    dicomdirs: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    skipped_kinds: Mapping[str, int] = field(default_factory=dict)


def _sniff(url: str, storage_options: Mapping[str, Any] | None) -> Kind:
    """:func:`dicomxray.dicom.sniff.classify` of the first bytes (one ranged GET), or ``"unreadable"``."""
    try:
        obj = RangedObject(url, storage_options, SNIFF_BYTES)
    except DicomXrayError:
        return "unreadable"
    return classify(bytes(obj.head[:SNIFF_BYTES]), obj.size)


def discover_url(root: str, *, storage_options: Mapping[str, Any] | None = None,
                 extensions: Iterable[str] = DICOM_EXTENSIONS, dicomdir: bool = True,
                 sample: int = 5) -> RemoteDiscovery:
    """Every DICOM object under the URL prefix ``root`` (or ``root`` itself), found as
    :func:`dicomxray.index.discover` finds files.

    One listing (for S3: 1,000 objects per request, with their ETag, size and
    Last-Modified); objects named ``*.dcm``/``*.dicom`` are taken without a
    request, any other is classified by its first 512 bytes (one ranged GET,
    :data:`SNIFF_THREADS` at once); a ``DICOMDIR`` object is read and its
    references resolved against the listing.  ``storage_options`` go to the
    fsspec filesystem (credentials, ``endpoint_url``, ``anon``...).

    Raises
    ------
    SourceFileNotFoundError
        Nothing under ``root``.
    RemoteAccessError, RemoteSourceError, MissingExtraError
        Access refused, the store failing after retries, the protocol's extra missing.
    """
    if is_dicomweb(root):  # a QIDO-RS listing: every instance is a DICOM object, named by its UIDs
        return _discover_dicomweb(root, storage_options)
    listed = list_objects(root, storage_options)
    single = list(listed) == [root]
    base = root.rpartition("/")[0] if single else root.rstrip("/")
    exts = tuple(e.lower() for e in extensions)
    names: dict[str, str] = {}  # relative path -> URL
    for url in listed:
        rel = url[len(base) + 1 :]
        if not any(part.startswith(".") for part in rel.split("/")):
            names[rel] = url
    visible = dict.fromkeys(names.values())
    found: dict[str, str] = {}
    dirs: list[str] = []
    missing: list[str] = []
    skipped: list[tuple[str, str]] = []
    unnamed: list[str] = []
    for rel, url in names.items():
        leaf = rel.rpartition("/")[2]
        if dicomdir and leaf.upper() == "DICOMDIR":
            try:
                refs = url_references(read_url(url, storage_options).data, url, visible)
            except DicomXrayError:
                refs = None
            if refs is None:
                skipped.append((rel, "unreadable DICOMDIR"))
                continue
            dirs.append(url)
            refs.account(rel, missing, skipped)
            for hit in refs.found:
                found[hit[len(base) + 1 :]] = hit
        elif leaf.lower().endswith(exts):
            found[rel] = url
        else:
            unnamed.append(rel)
    unnamed = [rel for rel in unnamed if rel not in found]
    if unnamed:
        with ThreadPoolExecutor(min(SNIFF_THREADS, len(unnamed))) as pool:
            kinds = list(pool.map(lambda rel: _sniff(names[rel], storage_options), unnamed))
        for rel, kind in zip(unnamed, kinds, strict=True):
            if kind == "dicom":
                found[rel] = names[rel]
            else:
                skipped.append((rel, "unreadable file" if kind == "unreadable" else "not DICOM"))
    files = [found[rel] for rel in sorted(found)]
    identities = {url: ident for url in files if (ident := listed.get(url)) is not None}
    counts = Counter(kind for _, kind in skipped)
    return RemoteDiscovery(root=root, base=base, files=files, skipped=len(skipped), identities=identities,
                           skipped_examples=tuple(sorted(rel for rel, _ in skipped)[:sample]), dicomdirs=tuple(dirs),
                           missing=tuple(missing), skipped_kinds={k: counts[k] for k in SKIP_KINDS if k in counts})


def _discover_dicomweb(root: str, storage_options: Mapping[str, Any] | None) -> RemoteDiscovery:
    """:func:`discover_url` of a DICOMweb root: the instances its query matches, in UID order, each with the
    strong identity its UIDs give (:func:`dicomxray.io.dicomweb.list_instances`)."""
    listed = list_instances(root, storage_options)
    return RemoteDiscovery(root=root, base=parse(root).root, files=list(listed), skipped=0, identities=listed)


def url_sources(source: str | RemoteDiscovery | Sequence[str], root: str | None,
                 storage_options: Mapping[str, Any] | None) -> tuple[str, list[str], int, int, dict[str, Any]]:
    """(URL prefix, URLs, skipped, missing, listed identities) for a URL ``source``."""
    if isinstance(source, str):
        source = discover_url(source, storage_options=storage_options)
    if isinstance(source, RemoteDiscovery):
        return (root or source.base).rstrip("/"), list(source.files), source.skipped, len(source.missing), \
            dict(source.identities)
    files = list(source)
    if root is None:
        if not files:
            raise ValueError("build_index: an empty list of URLs needs root=")
        folders = [f.rpartition("/")[0].split("/") for f in files]
        common = folders[0]
        for parts in folders[1:]:
            n = next((i for i, (a, b) in enumerate(zip(common, parts, strict=False)) if a != b), min(len(common), len(parts)))
            common = common[:n]
        root = "/".join(common)
    return root.rstrip("/"), files, 0, 0, {}


def is_url_source(source: Any) -> bool:
    if isinstance(source, RemoteDiscovery):
        return True
    if isinstance(source, str):
        return is_url(source)
    if isinstance(source, os.PathLike) or not isinstance(source, Iterable):
        return False
    items = list(source)
    return bool(items) and is_url(items[0])


_RELIST_WARNED: set[tuple[int, str]] = set()  # (process, root) pairs that warned of a failed DICOMweb relisting


def relist(root: str, storage_options: Mapping[str, Any] | None,
           last: Mapping[str, FileIdentity]) -> dict[str, FileIdentity | None]:
    """A new listing of the URL root ``root``: URL -> identity (``None`` where the listing gives none).

    A DICOMweb root whose server does not answer keeps ``last``, with one warning per process, so a cached
    epoch runs offline (an instance read from the server then fails as it would anyway); a refused login
    (:class:`~dicomxray.errors.RemoteAccessError`) still raises.  Other stores raise their listing's error.
    """
    if not is_dicomweb(root):
        return list_objects(root, storage_options)
    try:
        return dict(list_instances(root, storage_options))
    except RemoteSourceError as exc:
        if isinstance(exc, RemoteAccessError):
            raise
        if (os.getpid(), root) not in _RELIST_WARNED:
            _RELIST_WARNED.add((os.getpid(), root))
            warnings.warn(f"{exc}; keeping the last listing ({len(last)} instances)", LoaderWarning, stacklevel=2)
        return dict(last)
