"""Finding DICOM files by their bytes, and reading DICOMDIR files as indexes of their folder.

A file is a candidate when it carries the ``DICM`` magic at byte 128
(PS3.10 7.1), or when it is a bare data set without preamble: its first bytes
are a plausible group 0002 or 0008 element, and so is the element after it.
Media written to PS3.10 name their files ``IM000001`` or by UID, with no
extension, and index them in a ``DICOMDIR``: its directory records name each
file as a path relative to the DICOMDIR's folder (Referenced File ID,
(0004,1500)); the DICOMDIR itself is not an image.
"""

from __future__ import annotations

import os
import stat
import struct
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SourceFileNotFoundError
from ..io.source import is_url, local_path
from .elements import LONG_VRS, OPEN_FLAGS, VRS, pread

#: Extensions accepted without reading the file (VinBigData ships ``.dicom``).
DICOM_EXTENSIONS: tuple[str, ...] = (".dcm", ".dicom")

__all__ = ["DICOM_EXTENSIONS", "Discovery", "discover", "discover_files", "find_dicoms", "image_id", "looks_like_bare_dataset",
           "sniff"]

#: Bytes read to classify a file without an extension we trust.
SNIFF_BYTES = 512
_DIRECTORY_SOP_CLASS = b"1.2.840.10008.1.3.10"

@dataclass(frozen=True)
class Discovery:
    """What :func:`dicomxray.index.discover` found under ``root``.

    ``files`` are sorted by their path relative to ``root`` (POSIX), the same
    order on every machine; ``skipped`` counts the files that are not DICOM
    (or could not be opened), hidden files aside; ``skipped_examples`` names a
    few of them.  ``dicomdirs`` are the DICOMDIR files read as indexes and
    ``missing`` the files they reference that do not exist.
    """

    root: Path
    files: list[Path]
    skipped: int
    skipped_examples: tuple[str, ...] = ()
    dicomdirs: tuple[Path, ...] = ()
    missing: tuple[Path, ...] = field(default=())


def _element(data: bytes, pos: int, order: str) -> tuple[int, int, int] | None:
    """(group, element, end) of a plausible element at ``pos``, explicit or implicit VR."""
    if pos + 8 > len(data):
        return None
    fmt = "<" if order == "little" else ">"
    group, elem = struct.unpack_from(fmt + "HH", data, pos)
    vr = data[pos + 4 : pos + 6]
    if vr in VRS:
        if vr in LONG_VRS:
            if data[pos + 6 : pos + 8] != b"\0\0" or pos + 12 > len(data):
                return None
            (length,) = struct.unpack_from(fmt + "L", data, pos + 8)
            return group, elem, (pos + 12 + length if length != 0xFFFFFFFF else -1)
        (length,) = struct.unpack_from(fmt + "H", data, pos + 6)
        return group, elem, pos + 8 + length
    if order != "little":
        return None  # implicit VR is little endian only
    (length,) = struct.unpack_from("<L", data, pos + 4)
    if length == 0xFFFFFFFF:
        return group, elem, -1
    return group, elem, pos + 8 + length


def looks_like_bare_dataset(head: bytes, size: int) -> bool:
    """Whether ``head`` (the first bytes of a file of ``size`` bytes) starts a data set without preamble.

    The first element must be in group 0002 or 0008 with an even length that
    fits in the file; when the next element starts within ``head`` it must
    follow in tag order, in group 0002..0028 (the header groups every image has).
    """
    for order in ("little", "big"):
        first = _element(head, 0, order)
        if first is None:
            continue
        group, elem, end = first
        if group not in (0x0002, 0x0008) or end > size or (end > 0 and end % 2):
            continue
        if end < 0 or end + 8 > len(head):
            return end <= size  # the next element lies beyond what we read: one good element
        second = _element(head, end, order)
        if second is None:
            continue
        g2, e2, end2 = second
        if g2 % 2 == 0 and 0x0002 <= g2 <= 0x0028 and (g2, e2) > (group, elem) and end2 <= size:
            return True
    return False


def _is_directory_record_file(head: bytes) -> bool:
    """A PS3.10 file whose Media Storage SOP Class (0002,0002) is the Media Storage Directory (a DICOMDIR)."""
    pos = 132
    while (element := _element(head, pos, "little")) is not None:
        group, elem, end = element
        if group != 0x0002 or end < 0:
            return False
        if elem == 0x0002:
            start = end - struct.unpack_from("<H", head, pos + 6)[0]
            return head[start:end].rstrip(b"\0 ") == _DIRECTORY_SOP_CLASS
        pos = end
    return False


def sniff(path: str) -> str:
    """Classify a file by its first bytes: ``"dicom"``, ``"dicomdir"`` or ``"other"`` (unreadable too)."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError:
        return "other"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "other"
        head, size = pread(fd, SNIFF_BYTES, 0), st.st_size
    except OSError:
        return "other"
    finally:
        os.close(fd)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicomdir" if _is_directory_record_file(head) else "dicom"
    return "dicom" if looks_like_bare_dataset(head, size) else "other"


def read_dicomdir(path: Path) -> list[Path] | None:
    """The files a DICOMDIR references (existing or not), or ``None`` when it is not a readable DICOMDIR."""
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
            records = ds.get("DirectoryRecordSequence")
            if records is None:
                return None
            out: list[Path] = []
            for record in records:
                ref = record.get("ReferencedFileID")
                if not ref:
                    continue
                parts = [str(ref)] if isinstance(ref, str) else [str(p) for p in ref]
                if any(part in ("", ".", "..") or "/" in part or "\\" in part for part in parts):
                    continue  # PS3.10 8.5: file ID components are plain names; never leave the DICOMDIR's folder
                out.append(_resolve(path.parent, parts))
    except Exception:  # a DICOMDIR pydicom cannot read is counted as skipped, like any unreadable file
        return None
    return out


def _resolve(base: Path, parts: list[str]) -> Path:
    """``base/parts...``; on a miss, matched case-insensitively (media file IDs are upper case,
    while a CD mounted on Linux may show them lower case)."""
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


def _walk_tree(base: Path) -> list[tuple[str, Path]]:
    """(relative POSIX path, path) of every visible regular file (or link to one) under ``base``;
    symlinked folders are not followed (no loops), hidden names (``.x``) are left out."""
    out: list[tuple[str, Path]] = []
    stack = [("", str(base))]
    while stack:
        rel_dir, folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # an unreadable folder holds nothing we can read
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = f"{rel_dir}{entry.name}"
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((rel + "/", entry.path))
                elif entry.is_file():
                    out.append((rel, Path(entry.path)))
            except OSError:
                continue
    return out


def discover_files(base: Path, extensions: Iterable[str], *, dicomdir: bool = True, sample: int = 5) -> Discovery:
    """Walk ``base`` (a folder or one file): see :func:`dicomxray.index.discover`."""
    exts = tuple(e.lower() for e in extensions)
    names: list[tuple[str, Path]] = []
    if base.is_file():
        top = base.parent
        names.append((base.name, base))
    else:
        top = base
        names.extend(_walk_tree(base))
    found: dict[str, tuple[str, Path]] = {}
    dirs: list[Path] = []
    missing: list[Path] = []
    skipped: list[str] = []
    for rel, full in names:
        if dicomdir and full.name.upper() == "DICOMDIR":
            referenced = read_dicomdir(full)
            if referenced is None:
                skipped.append(rel)
                continue
            dirs.append(full)
            for ref in referenced:
                if ref.is_file():  # vouched for by the DICOMDIR: no need to read its bytes
                    found[os.path.normcase(os.path.abspath(ref))] = (Path(os.path.relpath(ref, top)).as_posix(), ref)
                else:
                    missing.append(ref)
    for rel, full in names:
        if dicomdir and full.name.upper() == "DICOMDIR":
            continue
        key = os.path.normcase(os.path.abspath(full))
        if key in found:
            continue
        if full.name.lower().endswith(exts) or sniff(str(full)) == "dicom":
            found[key] = (rel, full)
        else:
            skipped.append(rel)
    ordered = [full for _, full in sorted(found.values())]
    return Discovery(
        root=base, files=ordered, skipped=len(skipped), skipped_examples=tuple(skipped[:sample]),
        dicomdirs=tuple(dirs), missing=tuple(missing),
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
        files = "file" if found.skipped == 1 else "files"
        raise SourceFileNotFoundError(
            f"{found.root}: no DICOM files found ({found.skipped} non-DICOM {files} skipped{examples}; "
            f"a DICOM file has 'DICM' at byte 128, a bare data set a DICOM tag at byte 0)",
            path=str(found.root),
        )
    return found.files
