"""Reading a DICOMDIR (PS3.10 8.5) as the index of its folder: one reader, one reference filter.

Each directory record names a file by its Referenced File ID (0004,1500): path
components relative to the DICOMDIR's folder.  Folders (:mod:`.discover`) and
URL prefixes (:mod:`.discover_url`) read references here and keep only those
that stay inside: a component that is empty, ``.``, ``..``, or holds a
separator or a drive (``C:``) is refused, and a local reference whose real
path (symlinks resolved) leaves the root is refused too.  A reference that
does not exist is matched case-insensitively (media file IDs are upper case,
a CD mounted on Linux may show them lower case).
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.paths import is_inside
from .elements import check_bounds

__all__ = ["References", "dicomdir_references", "local_references", "safe_parts", "url_references"]


@dataclass(frozen=True)
class References:
    """What a DICOMDIR references: ``found`` (existing), ``missing`` (none by that name), ``refused``
    (would leave the root: the raw Referenced File IDs, joined with ``/``)."""

    found: list[Any] = field(default_factory=list)
    missing: list[Any] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def account(self, rel: str, missing: list[Any], skipped: list[tuple[str, str]]) -> None:
        """Add what the DICOMDIR named ``rel`` (as a walk lists it) misses and refuses to a walk's tallies."""
        missing.extend(self.missing)
        skipped.extend((f"{rel} -> {ref}", "DICOMDIR reference outside the root") for ref in self.refused)


def safe_parts(parts: list[str]) -> bool:
    """Whether Referenced File ID components stay in the DICOMDIR's folder: plain names only (PS3.10 8.5)."""
    return bool(parts) and not any(
        part in ("", ".", "..") or "/" in part or "\\" in part or ":" in part or "\0" in part for part in parts)


def dicomdir_references(data: bytes) -> list[list[str]] | None:
    """Every Referenced File ID of the DICOMDIR ``data`` (path components, unfiltered), or ``None`` when it
    is not a readable DICOMDIR (no Directory Record Sequence, or over :func:`~.elements.check_bounds`)."""
    import pydicom

    try:
        check_bounds(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            records = ds.get("DirectoryRecordSequence")
            if records is None:
                return None
            out: list[list[str]] = []
            for record in records:
                ref = record.get("ReferencedFileID")
                if ref:
                    out.append([str(ref)] if isinstance(ref, str) else [str(p) for p in ref])
    except Exception:  # a DICOMDIR pydicom cannot read is skipped, like any unreadable file
        return None
    return out


def _resolve(base: Path, parts: list[str]) -> Path:
    """``base/parts...``; on a miss, matched case-insensitively, component by component."""
    exact = base.joinpath(*parts)
    if exact.exists():
        return exact
    current = base
    for part in parts:
        candidate = current / part
        if not candidate.exists() and current.is_dir():
            matches = [p for p in os.listdir(current) if p.lower() == part.lower()]
            candidate = current / sorted(matches)[0] if matches else candidate
        current = candidate
    return current


def local_references(path: Path, root: Path) -> References | None:
    """The files the DICOMDIR at ``path`` references, none outside ``root`` (symlinks resolved), or
    ``None`` when it is not a readable DICOMDIR."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    refs = dicomdir_references(data)
    if refs is None:
        return None
    out = References()
    for parts in refs:
        if not safe_parts(parts):
            out.refused.append("/".join(parts))
            continue
        ref = _resolve(path.parent, parts)
        if not is_inside(ref, root):
            out.refused.append("/".join(parts))
        elif ref.is_file():
            out.found.append(ref)
        else:
            out.missing.append(ref)
    return out


def url_references(data: bytes, url: str, listed: Mapping[str, Any]) -> References | None:
    """The objects the DICOMDIR object ``url`` (its bytes ``data``) references, resolved against the
    listing ``listed`` (exact, else case-insensitive), or ``None`` when it is not a readable DICOMDIR."""
    refs = dicomdir_references(data)
    if refs is None:
        return None
    folder = url.rpartition("/")[0]
    by_lower = {key.lower(): key for key in listed}
    out = References()
    for parts in refs:
        if not safe_parts(parts):
            out.refused.append("/".join(parts))
            continue
        ref = "/".join([folder, *parts])
        hit = ref if ref in listed else by_lower.get(ref.lower())
        (out.missing if hit is None else out.found).append(ref if hit is None else hit)
    return out
