"""Where an output derived from a source name may go: inside its destination, never elsewhere.

An export mirrors its source tree: ``a/b/c.dcm`` becomes ``dest/a/b/c.png``.
The relative name comes from a file path, a URL key or a DICOMDIR reference,
and an object key is any string: ``root//tmp/x/ESCAPE.dcm`` has the relative
part ``/tmp/x/ESCAPE.dcm``, which ``Path(dest) / rel`` would turn into
``/tmp/x/ESCAPE.png``.  :func:`safe_output_path` is the one place such a name
becomes a path, :func:`output_root` the one place a destination the user named
becomes a folder (``~`` expanded, ``file://`` dropped), and :func:`output_clashes` the one
test that two outputs cannot both be written (the same path, or one inside the other).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import OutputPathError
from .source import locate

__all__ = ["is_inside", "output_clashes", "output_root", "safe_output_path"]

#: A drive (``C:``) starts a path only on Windows; elsewhere a colon is part of a file name.
_DRIVE = re.compile(r"^[A-Za-z]:") if os.name == "nt" else None


def output_root(path: str | os.PathLike[str]) -> Path:
    """The folder (or file) a user named for an output, classified as sources are
    (:func:`dicomxray.io.source.locate`: ``~`` expanded, a ``file://`` prefix dropped, made absolute).

    Raises
    ------
    OutputPathError
        ``path`` is a URL: outputs are written to local files (or a mounted share).
    """
    where = locate(path)
    if where.remote:
        raise OutputPathError(f"{where.path}: outputs are local files (give a folder here, or a mounted share)",
                              path=where.path)
    return Path(where.path)


def is_inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Whether ``path``, symlinks resolved, lies under ``root`` (symlinks resolved too); neither need exist."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def safe_output_path(dest_root: str | os.PathLike[str], relative_name: str | os.PathLike[str]) -> Path:
    """``dest_root / relative_name``, normalised, or :class:`~dicomxray.errors.OutputPathError`.

    ``relative_name`` is split at ``/`` (and at the platform's separators);
    empty and ``.`` components are dropped, so ``//tmp/x`` stays ``tmp/x``
    under ``dest_root`` (``~`` expanded, see :func:`output_root`).  A ``..``
    component, a drive (``C:``, on Windows only: elsewhere ``C:scan.dcm`` is
    a file name), a NUL, an empty name, or a result whose real path
    (symlinks already in the destination resolved) is not under
    ``dest_root``'s is refused.

    Parameters
    ----------
    dest_root : path-like
        The destination folder (it need not exist yet).
    relative_name : str or path-like
        The name derived from a source, POSIX separators.

    Returns
    -------
    pathlib.Path
        The target, under ``dest_root``.

    Raises
    ------
    OutputPathError
        The name would leave ``dest_root``; the message names both.
    """
    name = os.fspath(relative_name)
    dest_root = output_root(dest_root)
    parts = [p for p in re.split(r"[/" + re.escape(os.sep + (os.altsep or "")) + "]", name) if p not in ("", ".")]
    bad = not parts or "\0" in name or any(p == ".." or (_DRIVE is not None and _DRIVE.match(p)) for p in parts)
    target = dest_root.joinpath(*parts) if not bad else dest_root
    if bad or not is_inside(target, dest_root):
        raise OutputPathError(f"{name!r}: an output name that would leave the destination {os.fspath(dest_root)!r} "
                              f"(refused before writing)", path=name)
    return target


def output_clashes(targets: dict[str, Path]) -> list[tuple[str, str]]:
    """The pairs of sources whose outputs cannot both be written: the same target, or one target a folder
    the other would need (``x.dcm`` and ``x.dcm/y.dcm``).

    Parameters
    ----------
    targets : dict
        Source name -> its output path (from :func:`safe_output_path`).

    Returns
    -------
    list of (str, str)
        Each clashing pair once, in ``targets`` order (the first claimant first).
    """
    owner: dict[Path, str] = {}
    for source, target in targets.items():
        owner.setdefault(target, source)
    clashes: list[tuple[str, str]] = []
    for source, target in targets.items():
        if owner[target] != source:
            clashes.append((owner[target], source))
        for parent in target.parents:
            if parent in owner:
                clashes.append((owner[parent], source))
    return clashes
