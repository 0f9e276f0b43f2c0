"""Building the header index (:func:`dicomxray.index.build_index`): read headers in worker processes or on a
Dask cluster, reuse the rows of unchanged files, write Parquet or CSV atomically.  Split from
:mod:`dicomxray.index`, which re-exports it."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, cast

from ..dicom.discover import Discovery
from ..dicom.discover import discover_base as _base
from ..dicom.discover_url import RemoteDiscovery, is_url_source, url_sources
from ..dicom.sources import find_sources
from ..errors import DicomXrayError, IndexWarning
from ..io.remote import URL_THREADS
from ..io.source import FileIdentity, file_identity
from ..io.translate import missing_extra
from ..jobs.distributed import SHARD_SIZE, digest, item_token, run_sharded
from ..jobs.pool import run_jobs, worker_count
from .scan_url import scan_row
from .table import (
    SCHEMA_VERSION,
    columns_for,
    load_previous,
    load_salt,
    salt_id,
    unchanged,
    write_index,
)

__all__ = ["IndexReport", "build_index"]


@dataclass(frozen=True)
class IndexReport:
    """What :func:`build_index` did: ``read`` files were parsed, ``reused`` rows kept from the previous
    index, ``errors`` rows hold an error; ``skipped`` non-DICOM files were left out at discovery and
    ``missing`` files a DICOMDIR references do not exist."""

    path: Path
    root: Path | str  # a URL prefix for an index of objects
    format: Literal["parquet", "csv"]
    rows: int
    read: int
    reused: int
    errors: int
    skipped: int
    missing: int = 0


#: Below this many files to read, the default (``workers=None``) reads in this process: starting a pool
#: costs about as much as reading a thousand headers (``python -m benchmarks.bench_index``).
_POOL_MIN_FILES = 1000


def _decoders() -> dict[str, str]:
    """Transfer syntax -> the backend that would decode it here (installed ones only)."""
    from ..pixels.decode import capability_report

    return {row["uid"]: row["backend"] for row in capability_report() if row["backend"]}


def _format(out: Path) -> tuple[Path, Literal["parquet", "csv"]]:
    if out.suffix.lower() == ".csv":
        return out, "csv"
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:  # CSV only when asked for by name: a missing extra is an error like any other
        raise missing_extra("pyarrow", "writing a Parquet index (or name the output *.csv)", path=str(out)) from None
    return out, "parquet"


def _sources(source: Discovery | Sequence[str | os.PathLike[str]],
             root: str | os.PathLike[str] | None) -> tuple[Path, list[Path], int, int]:
    """(root of the relative paths, files, skipped, missing) for a :class:`Discovery` or a list of files."""
    if isinstance(source, Discovery):
        base = source.root if source.root.is_dir() else source.root.parent
        return (_base(root) if root is not None else base), list(source.files), source.skipped, len(source.missing)
    files = [_base(f) for f in source]
    if root is None:
        if not files:
            raise ValueError("build_index: an empty list of files needs root=")
        root = os.path.commonpath([os.path.abspath(f.parent) for f in files])
    return _base(root), files, 0, 0


def build_index(
    source: str | os.PathLike[str] | Discovery | RemoteDiscovery | Sequence[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    *,
    workers: int | None = None,
    progress: bool = True,
    include_patient: bool = False,
    salt: bytes | None = None,
    previous: str | os.PathLike[str] | None = None,
    rebuild: bool = False,
    root: str | os.PathLike[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    client: Any = None,
    shard_size: int = 256,
) -> IndexReport:
    """Index the headers of every DICOM file of ``source`` into ``out_path`` (Parquet, or CSV).

    Parameters
    ----------
    source
        A folder or a URL prefix (listed by :func:`dicomxray.dicom.sources.find_sources`:
        :class:`~dicomxray.errors.SourceFileNotFoundError` when it holds no DICOM file),
        a :class:`Discovery` or :class:`RemoteDiscovery`, or a list of files or URLs
        (``root`` then defaults to their common folder).
    out_path
        ``*.csv`` writes CSV (settings in ``<out>.meta.json``); anything else
        Parquet (:class:`MissingExtraError` when pyarrow is missing).
    workers
        Processes reading headers (default: :func:`~dicomxray.jobs.pool.worker_count`,
        the cores this process may use, CPU affinity and cgroup quota, or this
        process alone for fewer than 1,000 files to read; 0 or 1: in this process).
    include_patient
        Also write the patient identifiers (see the module docstring).
    salt
        Key of ``patient_hash``; by default read from (or created as)
        ``<out>.salt``, mode 0600.  The salt is never written into the index.
    previous
        An earlier index whose rows are reused for unchanged files (default:
        ``out_path`` itself when it exists; ``rebuild=True`` reads every file).
        Rows with an error are always read again.
    root
        The folder (or URL prefix) ``path`` is relative to (recorded in the index).
    storage_options
        For URLs: the fsspec filesystem's options.
    client
        A Dask ``distributed.Client``: headers are read on its workers, in tasks
        of ``shard_size`` files, with a completion manifest beside the output
        (``<out>.manifest/``) so a run resumes after the scheduler dies.  The
        index is byte-identical to a local run's.

    Returns
    -------
    IndexReport
    """
    worker_count(workers)  # a bad count is refused before any work
    if salt is not None and len(salt) < 16:
        raise ValueError(f"salt must be at least 16 bytes, got {len(salt)}")
    listed: dict[str, Any] = {}
    if isinstance(source, (str, os.PathLike)):  # a user's root: classified and listed once, by find_sources
        found = find_sources(source, storage_options)
        remote, files, skipped, missing, listed = found.remote, found.files, found.skipped, found.missing, \
            dict(found.identities)
        given = root if root is not None else found.base
        base_text = str(given).rstrip("/") if remote else str(Path(os.path.abspath(_base(given))))
    elif remote := is_url_source(source):
        base_url, urls, skipped, missing, listed = url_sources(source, None if root is None else str(root),  # type: ignore[arg-type]
                                                                 storage_options)
        base_text, files = base_url, cast(list[Path], urls)
    else:
        base, files, skipped, missing = _sources(source, root)  # type: ignore[arg-type]
        base_text = str(Path(os.path.abspath(base)))
    out, fmt = _format(_base(out_path))
    out.parent.mkdir(parents=True, exist_ok=True)
    key = salt if salt is not None else load_salt(out.with_name(out.name + ".salt"))
    columns = columns_for(include_patient)
    meta = {"format": "dicomxray-index", "schema": SCHEMA_VERSION, "root": base_text,
            "include_patient": include_patient, "salt_id": salt_id(key)}

    rels: dict[str, Path] = {}
    for f in files:
        rels.setdefault(str(f)[len(base_text) + 1 :] if remote else _relative(f, Path(base_text)), f)
    prev = None if rebuild else load_previous(_base(previous) if previous is not None else out)
    if prev is not None and any(prev.meta.get(k) != meta[k] for k in ("format", "schema", "root", "include_patient",
                                                                       "salt_id")):
        warnings.warn("the previous index was built with other settings (root, salt, include_patient or schema): "
                      "reading every file again", IndexWarning, stacklevel=2)
        prev = None
    reuse: list[int] = []
    to_read: list[str] = []
    for rel, f in rels.items():
        known = prev.identities.get(rel) if prev is not None else None
        if known is not None:  # only a listing that gives identities lets a URL's row be reused
            recorded, row = known
            if unchanged(listed.get(str(f)) if remote else _identity(f), recorded):
                reuse.append(row)
                continue
        to_read.append(rel)

    names = tuple(columns)
    paths = [str(rels[r]) for r in to_read]
    if client is not None:

        new_rows = index_rows(client, paths, key, include_patient, names, out=out, storage_options=storage_options,
                              remote=remote,
                              listed=listed, shard_size=shard_size, progress=progress)
    else:
        scan = partial(scan_row, key=key, include_patient=include_patient, columns=names,
                       storage_options=storage_options)
        new_rows = run_jobs(scan, paths, workers=worker_count(workers, len(paths), pool_min=_POOL_MIN_FILES),
                            desc="index", progress=progress, threads=URL_THREADS if remote else 1, unit="file")
    new_rows = [(rel, *row[1:]) for rel, row in zip(to_read, new_rows, strict=True)]
    n = write_index(out, fmt, columns, new_rows, prev, reuse, _decoders(), meta)
    errors = sum(1 for row in new_rows if row[names.index("error_type")] is not None)
    return IndexReport(path=out, root=base_text if remote else Path(base_text), format=fmt, rows=n,
                       read=len(to_read), reused=len(reuse), errors=errors, skipped=skipped, missing=missing)


def _identity(path: Path) -> FileIdentity | None:
    try:
        return file_identity(path)
    except DicomXrayError:
        return None


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` as POSIX text (``../x`` when outside it)."""
    full, prefix = os.path.abspath(path), str(base).rstrip(os.sep) + os.sep
    if full.startswith(prefix):
        rel = full[len(prefix) :]
        return rel if os.sep == "/" else rel.replace(os.sep, "/")
    return Path(os.path.relpath(full, base)).as_posix()


def index_rows(client: Any, paths: list[str], key: bytes, include_patient: bool, columns: tuple[str, ...], *,
               out: Path, storage_options: Mapping[str, Any] | None, listed: Mapping[str, Any] | None = None,
               shard_size: int = SHARD_SIZE, progress: bool = True, remote: bool = False) -> list[tuple[Any, ...]]:
    """The index rows of ``paths`` read on the cluster (:func:`dicomxray.index.build_index` with ``client=``);
    the manifest lives in ``<out>.manifest/``."""
    fn = partial(scan_row, key=key, include_patient=include_patient, columns=columns, storage_options=storage_options)
    token = digest(hashlib.sha256(key).hexdigest(), str(include_patient), *columns)
    return run_sharded(client, fn, paths, job="index", token=token, manifest=out.with_name(out.name + ".manifest"),
                       item_token=partial(item_token, listed=listed, storage_options=storage_options),
                       encode=list, decode=tuple,
                       shard_size=shard_size, threads=URL_THREADS if remote else 1, progress=progress)
