"""Discovery by content, the header index, and selection by tags.

* :func:`discover` / :func:`find_dicoms`: every DICOM file under a root,
  recognised by its bytes (``DICM`` at byte 128, or a bare data set), with
  ``.dcm``/``.dicom`` accepted without reading and ``DICOMDIR`` files read as
  indexes of the files they reference; anything else is skipped and counted.
* :func:`build_index`: one row per file from its header only (never its
  pixels), read in worker processes, written to Parquet (CSV without pyarrow),
  incrementally: an unchanged file (same path, size, mtime, inode, ctime) keeps
  its row.
* :func:`read_index` / :func:`select`: the index as a DataFrame, and the rows
  (with absolute ``file`` paths) matching a query string or a predicate.
* :func:`discover_url`: the same discovery under a URL prefix (``s3://``,
  ``gs://``, ``az://``, ``https://``...): one listing, ranged sniffs only for
  names without a DICOM extension.  :func:`build_index` takes a URL root too
  (each header is a ranged GET of its first 16 KiB, extended only when the
  header is longer), and a Dask ``client=`` to read the headers on a cluster.

The columns (``_index_io.COLUMNS``): ``path`` (relative POSIX path under the
index's root), the file's identity (``size``, ``mtime_ns``, ``inode``,
``ctime_ns``), the UIDs, ``Modality``, ``ViewPosition``, ``BodyPartExamined``,
``Manufacturer``..., the pixel description (``Rows``, ``Columns``,
``BitsStored``, ``PhotometricInterpretation``, ``TransferSyntaxUID``...),
``decodable``/``decoder`` (an installed backend decodes that syntax here, at
build time), ``has_window``/``has_voi_lut``, ``pixel_data_offset`` (byte
offset of the Pixel Data *value* in the file; -1 when absent or when the data
set is Deflated) and ``pixel_data_length`` (its declared length; -1 when
undefined, i.e. encapsulated: the fragments then run to the Sequence
Delimitation Item, at most to the end of the file, so a ranged read of
``[offset, size)`` gets them all), ``patient_hash`` and, for a file that
cannot be read, ``error_type`` and ``error`` (all else empty).

Patient identifiers are not written unless ``include_patient=True`` (then
``PatientID``, ``PatientSex``, ``PatientAge``, ``StudyDate``, ``SeriesDate``,
``StudyDescription``, ``SeriesDescription``: with them the columns are a
superset of idc-index's per-series ones that apply to local files).
``patient_hash`` is always written: HMAC-SHA256 of PatientID keyed with a
salt kept beside the index (``<index>.salt``, mode 0600, created once and
reused), so folds can be grouped by patient without the index revealing who.

For an object behind a URL, ``size`` and ``mtime_ns`` are its size and
Last-Modified (whole seconds), ``inode`` 63 bits of a digest of its ETag and
``ctime_ns`` 0; the root is the URL prefix, and ``select`` gives URLs.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from ._discover import Discovery, discover_files
from ._index_io import (
    COLUMNS,
    PATIENT_COLUMNS,
    SCHEMA_VERSION,
    columns_for,
    fetch_index,
    load_previous,
    load_salt,
    read_frame,
    read_meta,
    salt_id,
    write_index,
)
from ._remote_discover import DICOM_EXTENSIONS, RemoteDiscovery, discover_url, is_url_source, url_sources
from ._remote_scan import url_inode
from ._scan import scan_many
from ._source import is_url, local_path
from .errors import SourceFileNotFoundError

#: Every column an index can hold (patient columns only with include_patient=True).
INDEX_COLUMNS: frozenset[str] = frozenset(COLUMNS) | frozenset(PATIENT_COLUMNS)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DICOM_EXTENSIONS", "INDEX_COLUMNS", "Discovery", "IndexReport", "RemoteDiscovery", "build_index", "discover",
           "discover_url", "find_dicoms", "image_id", "read_index", "select"]


_INSTALL_HINT = 'pip install "dicomxray[index]" (pyarrow, pandas)'


def _base(root: str | os.PathLike[str]) -> Path:
    if is_url(root):
        raise ValueError(f"{root}: a URL; use discover_url(root, storage_options=...) for a URL prefix")
    return Path(os.path.expanduser(local_path(root)))


def image_id(path: str | os.PathLike[str]) -> str:
    """A file's name without its DICOM extension: ``abc.dcm`` -> ``abc``, but ``1.2.840.113619.2.55.3.1``
    (a UID-named file from a PACS export) stays whole.  Label keys and export names use it."""
    name = os.path.basename(os.fspath(path))
    stem, dot, ext = name.rpartition(".")
    return stem if dot and f".{ext.lower()}" in DICOM_EXTENSIONS else name


def discover(
    root: str | os.PathLike[str], *, extensions: Iterable[str] = DICOM_EXTENSIONS, dicomdir: bool = True
) -> Discovery:
    """Every DICOM file under ``root`` (a folder, one file, or a DICOMDIR), found by content.

    A file whose name ends with one of ``extensions`` is taken without being
    read; any other is read up to 512 bytes: ``DICM`` at byte 128 or a
    plausible group 0002/0008 element at byte 0 makes it DICOM.  A file named
    ``DICOMDIR`` is read as the index of the files it references (paths
    relative to its folder; case-insensitive on a miss) and is not itself
    returned.  Hidden files and folders (``.name``) are ignored; every other
    file that is not DICOM is counted in ``skipped``, never an error.

    Raises
    ------
    SourceFileNotFoundError
        ``root`` does not exist.
    """
    base = _base(root)
    if not base.exists():
        raise SourceFileNotFoundError(f"{base}: no such file or directory", path=str(base))
    return discover_files(base, extensions, dicomdir=dicomdir)


def find_dicoms(
    root: str | os.PathLike[str],
    *,
    extensions: Iterable[str] = DICOM_EXTENSIONS,
    allow_empty: bool = False,
) -> list[Path]:
    """The DICOM files under ``root`` (see :func:`discover`), sorted by relative POSIX path.

    The order is identical on every machine and every DDP rank.  ``root`` may
    also be a single file or a DICOMDIR.

    Raises
    ------
    SourceFileNotFoundError
        ``root`` does not exist, or holds no DICOM file (unless ``allow_empty``);
        the message says how many other files were skipped.
    """
    found = discover(root, extensions=extensions)
    if not found.files and not allow_empty:
        examples = f", e.g. {', '.join(found.skipped_examples)}" if found.skipped_examples else ""
        files = "file" if found.skipped == 1 else "files"
        raise SourceFileNotFoundError(
            f"{found.root}: no DICOM files found ({found.skipped} non-DICOM {files} skipped{examples}; "
            f"a DICOM file has 'DICM' at byte 128, a bare data set a DICOM tag at byte 0)",
            path=str(found.root),
        )
    return found.files


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
#: costs about as much as reading a thousand headers (bench_index).
_POOL_MIN_FILES = 1000


def _workers(workers: int | None) -> int:
    if workers is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ValueError(f"workers must be an integer >= 0 (0 or 1: in this process), got {workers!r}")
    return max(1, workers)


def _decoders() -> dict[str, str]:
    """Transfer syntax -> the backend that would decode it here (installed ones only)."""
    from .decode import capability_report

    return {row["uid"]: row["backend"] for row in capability_report() if row["backend"]}


def _format(out: Path) -> tuple[Path, Literal["parquet", "csv"]]:
    if out.suffix.lower() == ".csv":
        return out, "csv"
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        csv_out = out.with_suffix(".csv")
        warnings.warn(f"pyarrow is not installed: writing the index as CSV to {csv_out} ({_INSTALL_HINT})",
                      stacklevel=3)
        return csv_out, "csv"
    return out, "parquet"


def _sources(source: str | os.PathLike[str] | Discovery | Sequence[str | os.PathLike[str]],
             root: str | os.PathLike[str] | None) -> tuple[Path, list[Path], int, int]:
    """(root of the relative paths, files, skipped, missing) for any accepted local ``source``."""
    if isinstance(source, (str, os.PathLike)):
        source = discover(source)
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
        A folder (discovered with :func:`discover`), a :class:`Discovery`, or a
        list of files (``root`` then defaults to their common folder); or a URL
        prefix (:func:`discover_url`), a :class:`RemoteDiscovery` or a list of URLs.
    out_path
        ``*.csv`` writes CSV (settings in ``<out>.meta.json``); anything else
        Parquet, or CSV beside it with a warning when pyarrow is missing.
    workers
        Processes reading headers (default: the CPUs this process may use, or
        this process alone for fewer than 1,000 files to read; 0 or 1: in this
        process).
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
    n_workers = _workers(workers)
    if salt is not None and len(salt) < 16:
        raise ValueError(f"salt must be at least 16 bytes, got {len(salt)}")
    remote = is_url_source(source)
    listed: dict[str, Any] = {}
    if remote:
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
                      "reading every file again", stacklevel=2)
        prev = None
    reuse: list[int] = []
    to_read: list[str] = []
    for rel, f in rels.items():
        known = prev.identities.get(rel) if prev is not None else None
        if known is not None and remote:
            ident = listed.get(str(f))  # only a listing that gives identities lets a row be reused
            if ident is not None and (ident.size, ident.mtime_ns, url_inode(ident), 0) == known[:4]:
                reuse.append(known[4])
                continue
        elif known is not None:
            try:
                st = os.stat(f)
            except OSError:
                known = None
            else:
                if (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns) == known[:4]:
                    reuse.append(known[4])
                    continue
        to_read.append(rel)

    names = tuple(columns)
    if workers is None and len(to_read) < _POOL_MIN_FILES:
        n_workers = 1
    paths = [str(rels[r]) for r in to_read]
    if client is not None:
        from .distributed import index_rows

        new_rows = index_rows(client, paths, key, include_patient, names, out=out, storage_options=storage_options,
                              listed=listed, shard_size=shard_size, progress=progress)
    else:
        new_rows = _read_all(paths, key, include_patient, names, n_workers, progress, storage_options)
    new_rows = [(rel, *row[1:]) for rel, row in zip(to_read, new_rows, strict=True)]
    n = write_index(out, fmt, columns, new_rows, prev, reuse, _decoders(), meta)
    errors = sum(1 for row in new_rows if row[names.index("error_type")] is not None)
    return IndexReport(path=out, root=base_text if remote else Path(base_text), format=fmt, rows=n,
                       read=len(to_read), reused=len(reuse), errors=errors, skipped=skipped, missing=missing)


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` as POSIX text (``../x`` when outside it)."""
    full, prefix = os.path.abspath(path), str(base).rstrip(os.sep) + os.sep
    if full.startswith(prefix):
        rel = full[len(prefix) :]
        return rel if os.sep == "/" else rel.replace(os.sep, "/")
    return Path(os.path.relpath(full, base)).as_posix()


def _read_all(paths: list[str], key: bytes, include_patient: bool, columns: tuple[str, ...], workers: int,
              progress: bool, storage_options: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Scan ``paths`` in ``workers`` processes (chunks, so IPC stays small), in order, with a progress bar."""
    from tqdm import tqdm

    with tqdm(total=len(paths), disable=not progress, unit="file", desc="index", dynamic_ncols=True) as bar:
        chunk = max(8, min(256, len(paths) // (workers * 8) or 1))
        if workers <= 1 or len(paths) <= chunk:
            rows: list[tuple[Any, ...]] = []
            for start in range(0, len(paths), chunk):
                rows.extend(scan_many(paths[start : start + chunk], key, include_patient, columns, storage_options))
                bar.update(min(chunk, len(paths) - start))
            return rows
        parts: dict[int, list[tuple[Any, ...]]] = {}
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {
                pool.submit(scan_many, paths[s : s + chunk], key, include_patient, columns, storage_options): s
                for s in range(0, len(paths), chunk)
            }
            from concurrent.futures import as_completed

            for future in as_completed(futures):
                part = future.result()
                parts[futures[future]] = part
                bar.update(len(part))
        return [row for s in sorted(parts) for row in parts[s]]


def read_index(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    columns: Sequence[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The index at ``path`` as a pandas DataFrame (nullable dtypes), sorted by ``path``.

    ``df.attrs["dicomxray"]`` holds its settings, ``root`` included (``root=``
    overrides it, e.g. after the archive moved).  ``columns`` reads only those
    (``path`` and ``error_type`` always come along, for :func:`select`): much
    faster on a large index.  Needs pandas (and pyarrow for Parquet):
    ``pip install "dicomxray[index]"``.  ``path`` may be a URL (read once,
    with ``storage_options``).
    """
    if is_url(path):  # fetched once into a temporary folder
        import tempfile

        with tempfile.TemporaryDirectory(prefix="dicomxray-index-") as tmp:
            local = fetch_index(str(path), Path(tmp), storage_options)
            return read_index(local, root=root, columns=columns)
    p = _base(path)
    if not p.exists():
        raise SourceFileNotFoundError(f"{p}: no such index", path=str(p))
    if columns is not None:
        columns = ["path", "error_type", *(c for c in columns if c not in ("path", "error_type"))]
    try:
        meta = dict(read_meta(p) or {})
        df = read_frame(p, columns)
    except ImportError as exc:
        raise ImportError(f"reading an index needs pandas and pyarrow: {_INSTALL_HINT} ({exc})") from None
    if root is not None:
        meta["root"] = _root_text(root)
    df.attrs["dicomxray"] = meta
    return df


def _root_text(root: str | os.PathLike[str]) -> str:
    return str(root).rstrip("/") if is_url(root) else str(Path(os.path.abspath(_base(root))))


def select(
    index: pd.DataFrame | str | os.PathLike[str],
    where: str | Callable[[dict[str, Any]], bool] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    include_errors: bool = False,
) -> pd.DataFrame:
    """The rows of ``index`` matching ``where``, with their absolute paths in a ``file`` column.

    ``where`` is a pandas expression evaluated on whole columns (e.g.
    ``"ViewPosition in ['PA', 'AP'] and decodable and Rows >= 1024"``; a
    missing value never matches), or a callable taking one row as a dict and
    returning a bool (evaluated row by row in Python: prefer a string for large
    indexes).  Query strings are code: never pass one from an untrusted source.
    Rows with an error are left out unless ``include_errors``.  The order is
    the index's (sorted by path).  ``root`` overrides the recorded root.
    """
    import numpy as np
    import pandas as pd

    df = index if isinstance(index, pd.DataFrame) else read_index(index)
    meta = df.attrs.get("dicomxray", {})
    base = _root_text(root) if root is not None else meta.get("root")
    if not base:
        raise ValueError("the index records no root (a CSV without its .meta.json?): pass root=")
    mask = df["error_type"].isna() if not include_errors else pd.Series(True, index=df.index)
    if isinstance(where, str):
        try:
            result = df.eval(where)
        except Exception as exc:  # pandas raises many kinds for a bad expression; say which columns exist
            raise ValueError(f"where={where!r} cannot be evaluated on the index ({type(exc).__name__}: {exc}); "
                             f"columns: {', '.join(map(str, df.columns))}") from exc
        if not isinstance(result, pd.Series) or not pd.api.types.is_bool_dtype(result.dtype):
            raise ValueError(f"where={where!r} must give one True/False per row, not {type(result).__name__}")
        mask &= result.fillna(False).astype(bool)
    elif callable(where):
        plain = df.astype(object).where(df.notna(), None)  # None, not pd.NA, for a missing value
        keep = [bool(where(cast(dict[str, Any], row))) for row in plain.to_dict("records")]
        mask &= pd.Series(keep, index=df.index, dtype=bool)
    elif where is not None:
        raise TypeError(f"where must be a query string, a callable or None, not {type(where).__name__}")
    out = df.take(np.flatnonzero(mask.to_numpy(dtype=bool)))
    sep = "/" if is_url(base) else os.sep
    out["file"] = (base.rstrip(sep) + sep) + out["path"].astype(str)
    out.attrs["dicomxray"] = dict(meta, root=base)
    return out
