"""Finding DICOM files by their bytes, and reading DICOMDIR files as indexes of their folder.

A file is a candidate when :func:`dicomxray.dicom.sniff.classify` says so:
the ``DICM`` magic at byte 128 (PS3.10 7.1), or a bare data set without
preamble.  Media written to PS3.10 name their files ``IM000001`` or by UID,
with no extension, and index them in a ``DICOMDIR``
(:mod:`dicomxray.dicom.dicomdir`); the DICOMDIR itself is not an image.
Every entry that is not a regular DICOM file is counted in ``skipped`` by
its kind (:data:`SKIP_KINDS`), hidden names (``.x``) aside.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SourceFileNotFoundError
from ..io.source import is_url, local_path
from .dicomdir import local_references
from .sniff import sniff

#: Extensions accepted without reading the file (VinBigData ships ``.dicom``).
DICOM_EXTENSIONS: tuple[str, ...] = (".dcm", ".dicom")

__all__ = ["DICOM_EXTENSIONS", "SKIP_KINDS", "Discovery", "discover", "discover_files", "find_dicoms", "image_id"]

#: The kinds of entry :attr:`Discovery.skipped_kinds` counts.
SKIP_KINDS: tuple[str, ...] = (
    "not DICOM", "unreadable file", "unreadable folder", "unreadable DICOMDIR", "FIFO", "socket", "device",
    "dangling symlink", "looping symlink", "symlinked folder", "DICOMDIR reference outside the root",
)


@dataclass(frozen=True)
class Discovery:
    """What :func:`dicomxray.index.discover` found under ``root``.

    ``files`` are sorted by their path relative to ``root`` (POSIX), the same
    order on every machine; ``skipped`` counts every entry that is not a
    regular DICOM file, hidden names aside, and ``skipped_kinds`` counts them
    by kind (:data:`SKIP_KINDS`: ``{"not DICOM": 3, "FIFO": 1}``);
    ``skipped_examples`` names a few of them.  ``dicomdirs`` are the DICOMDIR
    files read as indexes and ``missing`` the files they reference that do
    not exist.
    """

    root: Path
    files: list[Path]
    skipped: int
    skipped_examples: tuple[str, ...] = ()
    dicomdirs: tuple[Path, ...] = ()
    missing: tuple[Path, ...] = field(default=())
    skipped_kinds: Mapping[str, int] = field(default_factory=dict)


def _special_kind(mode: int) -> str:
    return "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"


def _entry_kind(entry: os.DirEntry[str]) -> str:
    """``"folder"``, ``"file"`` (regular, or a link to one) or the skip kind of one directory entry."""
    st = entry.stat(follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        return "folder"
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(entry.path)
        except FileNotFoundError:
            return "dangling symlink"
        except OSError as exc:
            return "looping symlink" if exc.errno == errno.ELOOP else "unreadable file"
        if stat.S_ISDIR(st.st_mode):
            return "symlinked folder"  # not followed: no loops, nothing outside the tree
    return "file" if stat.S_ISREG(st.st_mode) else _special_kind(st.st_mode)


def _walk_tree(base: Path) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """(relative POSIX path, path) of every visible regular file (or link to one) under ``base``, and
    (relative path, kind) of every other visible entry; symlinked folders are not followed."""
    out: list[tuple[str, Path]] = []
    skipped: list[tuple[str, str]] = []
    stack = [("", str(base))]
    while stack:
        rel_dir, folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            skipped.append((rel_dir.rstrip("/") or ".", "unreadable folder"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = f"{rel_dir}{entry.name}"
            try:
                kind = _entry_kind(entry)
            except OSError:
                kind = "unreadable file"
            if kind == "folder":
                stack.append((rel + "/", entry.path))
            elif kind == "file":
                out.append((rel, Path(entry.path)))
            else:
                skipped.append((rel, kind))
    return out, skipped


def discover_files(base: Path, extensions: Iterable[str], *, dicomdir: bool = True, sample: int = 5) -> Discovery:
    """Walk ``base`` (a folder or one file): see :func:`dicomxray.index.discover`."""
    exts = tuple(e.lower() for e in extensions)
    names: list[tuple[str, Path]] = []
    skipped: list[tuple[str, str]] = []
    if base.is_file():
        top = base.parent
        names.append((base.name, base))
    else:
        top = base
        names, skipped = _walk_tree(base)
    found: dict[str, tuple[str, Path]] = {}
    dirs: list[Path] = []
    missing: list[Path] = []
    for rel, full in names:
        if dicomdir and full.name.upper() == "DICOMDIR":
            refs = local_references(full, top)
            if refs is None:
                skipped.append((rel, "unreadable DICOMDIR"))
                continue
            dirs.append(full)
            refs.account(rel, missing, skipped)
            for ref in refs.found:  # vouched for by the DICOMDIR: no need to read its bytes
                found[os.path.normcase(os.path.abspath(ref))] = (Path(os.path.relpath(ref, top)).as_posix(), ref)
    for rel, full in names:
        if dicomdir and full.name.upper() == "DICOMDIR":
            continue
        key = os.path.normcase(os.path.abspath(full))
        if key in found:
            continue
        kind = "dicom" if full.name.lower().endswith(exts) else sniff(str(full))
        if kind == "dicom":
            found[key] = (rel, full)
        else:
            skipped.append((rel, "unreadable file" if kind == "unreadable" else "not DICOM"))
    ordered = [full for _, full in sorted(found.values())]
    kinds = Counter(kind for _, kind in skipped)
    return Discovery(
        root=base, files=ordered, skipped=len(skipped), skipped_examples=tuple(rel for rel, _ in skipped[:sample]),
        dicomdirs=tuple(dirs), missing=tuple(missing), skipped_kinds={k: kinds[k] for k in SKIP_KINDS if k in kinds},
    )


def discover_base(root: str | os.PathLike[str]) -> Path:
    if is_url(root):
        raise ValueError(f"{root}: a URL; use discover_url(root, storage_options=...) for a URL prefix")
    return Path(os.path.expanduser(local_path(root)))


def discover(
    root: str | os.PathLike[str], *, extensions: Iterable[str] = DICOM_EXTENSIONS, dicomdir: bool = True
) -> Discovery:
    """Every DICOM file under ``root`` (a folder, one file, or a DICOMDIR), found by content.

    A file whose name ends with one of ``extensions`` is taken without being
    read; any other is read up to 512 bytes and classified by
    :func:`dicomxray.dicom.sniff.classify` (``DICM`` at byte 128, or a
    plausible data element at byte 0).  A file named ``DICOMDIR`` is read as
    the index of the files it references (:mod:`dicomxray.dicom.dicomdir`:
    paths relative to its folder, case-insensitive on a miss, never outside
    ``root``) and is not itself returned.  Hidden files and folders
    (``.name``) are ignored; every other entry that is not a regular DICOM
    file (a FIFO, a dangling symlink, an unreadable folder...) is counted in
    ``skipped`` and by kind in ``skipped_kinds``, never an error.

    Raises
    ------
    SourceFileNotFoundError
        ``root`` does not exist.
    """
    base = discover_base(root)
    if not base.exists():
        raise SourceFileNotFoundError(f"{base}: no such file or directory", path=str(base))
    return discover_files(base, extensions, dicomdir=dicomdir)


def image_id(path: str | os.PathLike[str]) -> str:
    """A file's name without its DICOM extension: ``abc.dcm`` -> ``abc``, but ``1.2.840.113619.2.55.3.1``
    (a UID-named file from a PACS export) stays whole.  Label keys and export names use it."""
    name = os.path.basename(os.fspath(path))
    stem, dot, ext = name.rpartition(".")
    return stem if dot and f".{ext.lower()}" in DICOM_EXTENSIONS else name


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
        kinds = ", ".join(f"{n} {kind}" for kind, n in found.skipped_kinds.items())
        files = "file" if found.skipped == 1 else "files"
        raise SourceFileNotFoundError(
            f"{found.root}: no DICOM files found ({found.skipped} non-DICOM {files} skipped"
            f"{' (' + kinds + ')' if kinds else ''}{examples}; "
            f"a DICOM file has 'DICM' at byte 128, a bare data set a DICOM tag at byte 0)",
            path=str(found.root),
        )
    return found.files
