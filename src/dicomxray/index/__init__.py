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

The columns (:data:`dicomxray.index.table.COLUMNS`): ``path`` (relative POSIX path under the
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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..dicom.discover import DICOM_EXTENSIONS, Discovery, discover, find_dicoms, image_id
from ..dicom.discover import discover_base as _base
from ..dicom.discover_url import RemoteDiscovery, discover_url
from ..errors import IndexQueryError, IndexWarning, SourceFileNotFoundError
from ..io.source import is_url
from ..io.translate import missing_extra
from .build import IndexReport, build_index
from .table import (
    COLUMNS,
    PATIENT_COLUMNS,
    column_names,
    fetch_index,
    read_frame,
    read_meta,
)

#: Every column an index can hold (patient columns only with include_patient=True).
INDEX_COLUMNS: frozenset[str] = frozenset(COLUMNS) | frozenset(PATIENT_COLUMNS)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DICOM_EXTENSIONS", "INDEX_COLUMNS", "Discovery", "IndexReport", "RemoteDiscovery", "build_index", "discover",
           "discover_url", "find_dicoms", "image_id", "read_index", "select",
           "select_files"]




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
        meta["columns"] = column_names(p)  # all of them, for a query's error to list
        df = read_frame(p, columns)
    except ImportError as exc:
        raise missing_extra(exc.name or "pandas", "reading an index", path=str(p)) from None
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
            names = meta.get("columns") or list(map(str, df.columns))  # the index's, not only those loaded
            raise IndexQueryError(f"where={where!r} cannot be evaluated on the index ({type(exc).__name__}: {exc}); "
                                  f"columns: {', '.join(names)}") from exc
        if not isinstance(result, pd.Series) or not pd.api.types.is_bool_dtype(result.dtype):
            raise IndexQueryError(f"where={where!r} must give one True/False per row, not {type(result).__name__}")
        mask &= result.fillna(False).astype(bool)
    elif callable(where):
        plain = df.astype(object).where(df.notna(), None)  # None, not pd.NA, for a missing value
        keep = [bool(where(cast(dict[str, Any], row))) for row in plain.to_dict("records")]
        mask &= pd.Series(keep, index=df.index, dtype=bool)
    elif where is not None:
        raise TypeError(f"where must be a query string, a callable or None, not {type(where).__name__}")
    out = df.take(np.flatnonzero(mask.to_numpy(dtype=bool)))
    if len(out) == 0:
        warnings.warn(f"where={where!r} matches none of the {len(df)} rows of the index"
                      + ("" if include_errors else " (rows with an error left out)"), IndexWarning, stacklevel=2)
    sep = "/" if is_url(base) else os.sep
    out["file"] = (base.rstrip(sep) + sep) + out["path"].astype(str)
    out.attrs["dicomxray"] = dict(meta, root=base)
    return out


def select_files(
    index: str | os.PathLike[str],
    where: str | Callable[[dict[str, Any]], bool] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """:func:`select` on the index at ``index``, loading only the columns a query string names, with every
    selected file checked against its row (what ``DicomXrayDataset.from_index`` reads).

    A file changed since it was indexed (its size, mtime, inode or ctime differ) has its header read again
    and ``where`` applied to what it says now; a file gone is left out; both are named in an
    :class:`~dicomxray.errors.IndexWarning`.  The check costs one ``stat`` per selected file; files behind
    URLs are not checked.  Files outside the selection are not read: ``build_index`` again (incremental) to
    find one that would match now.
    """
    from .verify import IDENTITY_COLUMNS, refresh

    columns = None
    if isinstance(where, str):
        columns = sorted({*(n for n in INDEX_COLUMNS if n in where), *IDENTITY_COLUMNS})
    rows = select(read_index(index, columns=columns, root=root, storage_options=storage_options), where, root=root)
    return refresh(rows, where, None if is_url(index) else _base(index), select)
