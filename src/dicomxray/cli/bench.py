"""``dicomxray bench``: ``read_xray`` against the classic recipe on your own files.

The recipe and the timer come from :mod:`dicomxray.testing` (tooling, like this module; the library never
imports either).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import TRAINING_SIZE
from ..testing import classic_read_xray, interleaved
from . import _options

if TYPE_CHECKING:
    from ..dicom.sources import Sources

__all__ = ["bench_folder"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="read_xray against the classic recipe on your own files",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("root", help="a DICOM folder, or a URL prefix (its first --limit files are downloaded first: "
                                "the bench times decoding, not the network)")
    p.add_argument("--size", type=_options.size, default=TRAINING_SIZE, help="output size")
    p.add_argument("--limit", type=_options.bounded_int(1), default=20, help="at most this many files")
    p.add_argument("--repeat", type=_options.bounded_int(1), default=3, help="timed runs per file")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    _options.add_remote_options(p, cluster=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..dicom.sources import find_sources

    found = find_sources(args.root, args.storage_options)  # the user's root, classified once
    if not found.remote:
        bench_folder(found, size=args.size, limit=args.limit, repeat=args.repeat, out=args.out)
        return 0
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dicomxray-bench-") as tmp:
        _download(found, Path(tmp), args.limit, args.storage_options)
        bench_folder(tmp, size=args.size, limit=args.limit, repeat=args.repeat, out=args.out)
    return 0


def _download(found: Sources, folder: Path, limit: int, storage_options: dict[str, Any] | None) -> None:
    """The first ``limit`` objects ``found`` lists, copied into ``folder`` with the tree kept.

    Every name goes through :func:`~dicomxray.io.paths.safe_output_path` and the names are checked against
    each other (:func:`~dicomxray.io.paths.output_clashes`) before anything is written.

    Raises
    ------
    OutputPathError
        A name would leave ``folder`` (``data//etc/x.dcm`` stays ``folder/etc/x.dcm``; ``..`` is refused), or
        two names clash (``x.dcm`` and ``x.dcm/y.dcm``): the message names both.
    """
    from ..errors import OutputPathError
    from ..io.paths import output_clashes, safe_output_path
    from ..io.source import read_source

    targets = {str(url): safe_output_path(folder, found.relative(url)) for url in found.files[:limit]}
    clashes = output_clashes(targets)
    if clashes:
        first, second = clashes[0]
        raise OutputPathError(f"{first} and {second}: their copies would clash in {folder} (one is a file, the "
                              f"other needs it as a folder, or both are one name); rename one"
                              + (f" ({len(clashes) - 1} more clashes)" if len(clashes) > 1 else ""), path=second)
    for url, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read_source(url, storage_options=storage_options).data)


def bench_folder(root: str | os.PathLike[str] | Sources, *, size: int = 512, limit: int = 20, repeat: int = 3,
                 out: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Time ``read_xray(path, size)`` against the classic recipe on up to ``limit`` files of ``root``.

    Parameters
    ----------
    root : path-like or Sources
        A folder of DICOM files (searched recursively, sorted), or what
        :func:`~dicomxray.dicom.sources.find_sources` found in one.
    size : int
        Output size of both.
    limit : int
        Files timed at most.
    repeat : int
        Interleaved timed runs per file (medians).
    out : path-like, optional
        Also write the summary there as JSON.

    Returns
    -------
    dict
        ``files``, ``size``, per-file ``rows`` and, with any row, ``median_speedup`` and the totals.
    """
    from .. import load_xray, read_xray
    from ..dicom.sources import Sources, find_sources

    files = (root if isinstance(root, Sources) else find_sources(root)).files[:limit]
    rows: list[dict[str, Any]] = []
    for f in files:
        try:
            meta = load_xray(f, size).meta
            cases: dict[str, Callable[[], Any]] = {
                "classic": partial(classic_read_xray, f, size), "dicomxray": partial(read_xray, f, size)}
            t = interleaved(cases, repeat)
        except Exception as exc:  # ours raise DicomXrayError; the classic recipe whatever pydicom raises
            print(f"{f}: skipped ({type(exc).__name__}: {exc})")
            continue
        ratio = t["classic"]["wall_ms"] / t["dicomxray"]["wall_ms"]
        rows.append({"file": str(f), "syntax": meta.transfer_syntax, "decoder": meta.decoder, **{
            f"{k}_ms": v["wall_ms"] for k, v in t.items()}, "speedup": ratio})
        print(f"{Path(f).name:<40} {meta.decoder:<12} classic {t['classic']['wall_ms']:8.1f} ms  "
              f"dicomxray {t['dicomxray']['wall_ms']:7.1f} ms  {ratio:5.1f}x", flush=True)
    summary: dict[str, Any] = {"files": len(rows), "size": size, "rows": rows}
    if rows:
        summary["median_speedup"] = statistics.median(float(r["speedup"]) for r in rows)
        summary["total_classic_ms"] = sum(r["classic_ms"] for r in rows)
        summary["total_dicomxray_ms"] = sum(r["dicomxray_ms"] for r in rows)
        print(f"\n{len(rows)} files: median speed-up {summary['median_speedup']:.1f}x, "
              f"total {summary['total_classic_ms']:.0f} ms -> {summary['total_dicomxray_ms']:.0f} ms")
    if out:
        from ..io.paths import output_root

        output_root(out).write_text(json.dumps(summary, indent=2))
    return summary
