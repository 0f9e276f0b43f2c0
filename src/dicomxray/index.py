"""Deterministic discovery of DICOM files under a root."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import SourceFileNotFoundError

__all__ = ["DICOM_EXTENSIONS", "find_dicoms"]

#: Extensions taken by default (VinBigData ships ``.dicom``).
DICOM_EXTENSIONS: tuple[str, ...] = (".dcm", ".dicom")


def find_dicoms(
    root: str | os.PathLike[str],
    *,
    extensions: Iterable[str] = DICOM_EXTENSIONS,
    allow_empty: bool = False,
) -> list[Path]:
    """Every file under ``root`` (recursively) whose extension is in ``extensions``, sorted.

    The order is the sorted relative POSIX path, identical on every machine
    and every DDP rank.  ``root`` may also be a single file.

    Raises
    ------
    SourceFileNotFoundError
        ``root`` does not exist, or holds no matching file (unless ``allow_empty``).
    """
    base = Path(os.path.expanduser(os.fspath(root)))
    exts = tuple(e.lower() for e in extensions)
    if base.is_file():
        return [base]
    if not base.is_dir():
        raise SourceFileNotFoundError(f"{base}: no such file or directory", path=str(base))
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in filenames:
            if name.lower().endswith(exts) and not name.startswith("."):
                full = Path(dirpath) / name
                found.append((full.relative_to(base).as_posix(), full))
    if not found and not allow_empty:
        raise SourceFileNotFoundError(
            f"{base}: no DICOM files ({', '.join(exts)}) found under this folder", path=str(base)
        )
    found.sort()
    return [p for _, p in found]
