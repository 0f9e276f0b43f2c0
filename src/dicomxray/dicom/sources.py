"""The DICOM files under a user's root, a folder or a URL prefix: the root classified once, here, and listed.

Every command and the dataset start from a root the user gave; :func:`find_sources` is where it is told local
from remote (through :func:`dicomxray.io.source.is_url`) and walked (:func:`~dicomxray.dicom.discover.find_dicoms`)
or listed (:func:`~dicomxray.dicom.discover_url.discover_url`), so no caller repeats that dispatch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SourceFileNotFoundError
from ..io.dicomweb import is_dicomweb, relative_name
from ..io.source import FileIdentity, is_url, local_path
from .discover import discover, find_dicoms
from .discover_url import discover_url

__all__ = ["Sources", "find_sources"]


@dataclass(frozen=True)
class Sources:
    """What :func:`find_sources` found.

    ``root`` is the root as given (a URL, or a local ``Path`` with ``~`` expanded); ``base`` what names are
    relative to (``root``, or its folder when ``root`` is one file or object); ``files`` local ``Path`` objects or
    URL strings, sorted by their relative path; ``identities`` the listing's identity of each URL that has one;
    ``skipped`` the entries that are not DICOM files and ``missing`` the files a DICOMDIR references that do not
    exist (what the header index reports).
    """

    root: str | Path
    base: str | Path
    files: list[Any]
    remote: bool
    identities: dict[str, FileIdentity] = field(default_factory=dict, repr=False)
    skipped: int = 0
    missing: int = 0

    def relative(self, file: str | os.PathLike[str]) -> str:
        """``file``'s POSIX path relative to ``base`` (``Study/Series/SOP`` for a DICOMweb instance)."""
        if self.remote and is_dicomweb(str(file)):
            return relative_name(str(file))
        if self.remote:
            return str(file)[len(str(self.base)) + 1 :]
        return Path(file).relative_to(self.base).as_posix()


def find_sources(root: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None) -> Sources:
    """The DICOM files under ``root``: a folder walked, one file, a DICOMDIR, a URL prefix listed once, or the
    instances a DICOMweb root (``dicomweb+http(s)://``, with a QIDO-RS query) lists.

    Raises
    ------
    SourceFileNotFoundError
        ``root`` does not exist or holds no DICOM file; the message says what else was there.
    """
    if is_url(root):
        found = discover_url(str(root), storage_options=storage_options)
        if not found.files and is_dicomweb(str(root)):
            raise SourceFileNotFoundError(f"{root}: the DICOMweb server lists no instance for it", path=str(root))
        if not found.files:
            raise SourceFileNotFoundError(f"{root}: no DICOM objects found ({found.skipped} other objects)",
                                          path=str(root))
        return Sources(str(root), found.base, list(found.files), True, dict(found.identities), found.skipped,
                       len(found.missing))
    path = Path(os.path.expanduser(local_path(root)))
    walked = discover(path)
    files = walked.files or find_dicoms(path)  # nothing found: find_dicoms's error says what else was there
    return Sources(path, path if path.is_dir() else path.parent, list(files), False, skipped=walked.skipped,
                   missing=len(walked.missing))
