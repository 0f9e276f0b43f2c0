"""Selected rows checked against their files: a file changed since it was indexed has its header read again
(and the query applied to what it says now); a file gone is left out; both are named in an
:class:`~dicomxray.errors.IndexWarning`.  Only files of a local root are checked (one ``stat`` each); the rows
of an index of URLs are taken as they are."""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import IndexWarning
from ..io.identity import is_url
from .table import IDENTITY_COLUMNS, unchanged

__all__ = ["IDENTITY_COLUMNS", "changed_files", "refresh"]

_NAMED = 5


def changed_files(rows: Any) -> tuple[list[int], list[int]]:
    """Positions of ``rows`` (a selection with ``file`` and the identity columns) whose file changed, and whose
    file is gone."""
    from ..io.source import file_identity

    changed, gone = [], []
    recorded = zip(*(rows[c].tolist() for c in IDENTITY_COLUMNS), strict=True)
    for i, (file, known) in enumerate(zip(rows["file"].tolist(), recorded, strict=True)):
        try:
            now = file_identity(file)
        except OSError:
            gone.append(i)
            continue
        if not unchanged(now, known):
            changed.append(i)
    return changed, gone


def refresh(rows: Any, where: str | Callable[[dict[str, Any]], bool] | None, index: str | os.PathLike[str] | None,
            select: Callable[..., Any]) -> Any:
    """``rows`` with each changed file's row read again and matched against ``where`` anew, gone files dropped;
    warns naming them."""
    import pandas as pd

    base = rows.attrs.get("dicomxray", {}).get("root", "")
    if len(rows) == 0 or is_url(base) or not set(IDENTITY_COLUMNS) <= set(rows.columns):
        return rows
    changed, gone = changed_files(rows)
    if not changed and not gone:
        return rows
    fresh = _reread(rows.iloc[changed], where, index, select) if changed else rows.iloc[:0]
    keep = rows.drop(index=rows.index[changed + gone])
    out = pd.concat([keep, fresh]) if len(fresh) else keep
    out = out.sort_values("path", kind="stable")
    out.attrs = rows.attrs
    names = [str(p) for p in rows["path"].iloc[changed + gone]]
    shown = ", ".join(names[:_NAMED]) + (f" and {len(names) - _NAMED} more" if len(names) > _NAMED else "")
    warnings.warn(
        f"{len(names)} of {len(rows)} selected files changed since the index was built or are gone ({shown}): "
        f"{len(changed)} read again ({len(changed) - len(fresh)} of them no longer match), {len(gone)} left out; "
        "build_index again to bring the index up to date (unchanged files are not read)", IndexWarning, stacklevel=3)
    return out


def _reread(rows: Any, where: str | Callable[[dict[str, Any]], bool] | None, index: str | os.PathLike[str] | None,
            select: Callable[..., Any]) -> Any:
    """The rows of the files in ``rows`` as a build would write them now, filtered by ``where``."""
    from .build import _decoders
    from .scan_url import scan_many
    from .table import columns_for, read_frame, write_index

    meta = dict(rows.attrs.get("dicomxray", {}))
    salt = Path(f"{index}.salt") if index is not None else None
    key = bytes.fromhex(salt.read_text().strip()) if salt is not None and salt.exists() else b"\0" * 32
    columns = columns_for(bool(meta.get("include_patient")))
    files = rows["file"].tolist()
    new = [(rel, *row[1:]) for rel, row in zip(rows["path"].tolist(),
                                                scan_many(files, key, bool(meta.get("include_patient")),
                                                          tuple(columns), None), strict=True)]
    with tempfile.TemporaryDirectory(prefix="dicomxray-reread-") as tmp:
        part = Path(tmp) / "rows.csv"
        write_index(part, "csv", columns, new, None, [], _decoders(), meta)
        frame = read_frame(part, [c for c in rows.columns if c != "file"])
    if salt is None or not salt.exists():
        frame["patient_hash"] = None  # the salt is not beside the index: no hash rather than a wrong one
    frame.attrs["dicomxray"] = meta
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IndexWarning)  # an empty re-read is reported by the caller
        picked = select(frame, where)
    return picked.astype({c: rows[c].dtype for c in picked.columns if c in rows.columns}, errors="ignore")
