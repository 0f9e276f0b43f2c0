"""Batch jobs over many files through the one pipeline: PNG/JPEG export and cache builds.

Sources are local paths or URLs (``s3://``...: read with ``storage_options``,
many at once per worker since they wait on the network).  Jobs run in this
process, in ``workers`` local processes, or on a Dask cluster (``client=``,
see :mod:`dicomxray.jobs.distributed`): the outputs are the same bytes either way.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from ..cache import XrayCache
from ..config import CacheConfig, PipelineConfig
from ..errors import CacheWarning, DicomXrayError
from ..io.atomic import atomic_write
from ..io.remote import URL_THREADS
from ..io.source import FileIdentity, Opener, is_url
from ..pixels.pipeline import Pipeline
from .pool import run_jobs

__all__ = ["ExportResult", "build_cache", "export_folder", "run_jobs", "write_image_atomic"]

#: What one file of a job may raise and still be only that file's failure (a bad file, an unreadable one, a
#: value a writer refuses): the run goes on and the result names it.  Export and cache build share it.
JOB_ERRORS = (DicomXrayError, OSError, ValueError)


@dataclass(frozen=True)
class ExportResult:
    """One file of a job.  ``status``: ``"written"``, ``"skipped"`` (up to date, or already cached),
    ``"failed"`` (``error`` names the file and what is wrong), or, in a cache build, ``"unwritten"`` (the
    cache's directory refused a write, e.g. a full disk; ``error`` says why)."""

    source: str
    target: str
    status: str
    error: str = ""


def write_image_atomic(array: np.ndarray, target: Path, fmt: str, quality: int = 95, *, stamp: str = "") -> None:
    """Write ``array`` as PNG/JPEG to ``target`` atomically (never a partial file), ``stamp`` in its metadata."""
    if array.dtype == np.uint16 and fmt != "png":
        raise ValueError("16-bit output needs --format png")
    im = Image.fromarray(array)
    with atomic_write(target) as fh:
        if fmt == "png":
            info = PngImagePlugin.PngInfo()
            if stamp:
                info.add_text("dicomxray", stamp)
            im.save(fh, format="PNG", compress_level=1, pnginfo=info)
        else:
            im.save(fh, format="JPEG", quality=quality, comment=stamp.encode())


def _threads(remote: bool) -> int:
    """Items a process runs at once: URLs wait on the network, local files on the CPU."""
    return URL_THREADS if remote else 1


def export_one(job: tuple[str, str] | tuple[str, str, FileIdentity | None], *, fmt: str, config: PipelineConfig,
               overwrite: bool, storage_options: Mapping[str, Any] | None = None) -> ExportResult:
    """Render ``job = (source, target[, listed identity])`` and write the target; an up-to-date target is skipped."""
    source, target = job[0], job[1]
    listed = job[2] if len(job) > 2 else None
    opener = Opener(storage_options, {source: listed} if listed is not None else None)
    dst, where = Path(target), opener.locate(source)
    try:
        if not overwrite and dst.exists() and _stamp_of(dst) == _stamp(opener.identity(where), config, fmt):
            return ExportResult(source, target, "skipped")
        image = Pipeline(config, opener=opener).read(where)
        stamp = _stamp(image.identity, config, fmt) if image.identity is not None else ""
        write_image_atomic(image.pixels, dst, fmt, stamp=stamp)
        return ExportResult(source, target, "written")
    except JOB_ERRORS as exc:
        return ExportResult(source, target, "failed", str(exc))


def _stamp(identity: FileIdentity, config: PipelineConfig, fmt: str) -> str:
    """What an exported image was made from: the source's identity, every pipeline option, the pipeline's code.
    Written into the image (a PNG text chunk, a JPEG comment); a target is up to date only when it matches."""
    from ..cache import code_fingerprint

    blob = f"{identity.token()}\0{config.fingerprint()}\0{code_fingerprint()}\0{fmt}".encode()
    return "dicomxray:" + hashlib.sha256(blob).hexdigest()[:32]


def _stamp_of(target: Path) -> str:
    try:
        with Image.open(target) as im:
            return str(im.info.get("dicomxray") or im.info.get("comment", b"").decode("latin-1", "replace"))
    except (OSError, ValueError):
        return ""


def export_folder(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    fmt: str = "png",
    config: PipelineConfig | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    client: Any = None,
    shard_size: int | None = None,
) -> list[ExportResult]:
    """Render every DICOM under ``source`` to ``target``, mirroring the folder tree.

    ``a/b/c.dcm`` becomes ``target/a/b/c.png``.  Files are written atomically;
    targets newer than their source are skipped unless ``overwrite``.  A bad
    file does not stop the run: its result has ``status="failed"`` and the
    error text names it.  ``source`` may be a URL prefix (read with
    ``storage_options``); with a Dask ``client`` the files are rendered on its
    workers, ``shard_size`` per task, with a completion manifest in
    ``target/.dicomxray-manifest/`` (see :mod:`dicomxray.jobs.distributed`).
    ``workers`` processes render locally (default: :func:`~dicomxray.jobs.pool.worker_count`, the cores
    this process may use; 0 or 1: this process).  ``~`` in ``target`` is the home folder.
    """
    from ..dicom.discover import image_id
    from ..dicom.sources import find_sources
    from ..io.paths import output_root

    if fmt not in ("png", "jpg"):
        raise ValueError(f"fmt must be 'png' or 'jpg', got {fmt!r}")
    dst = output_root(target)
    found = find_sources(source, storage_options)  # the user's root, classified once
    remote = found.remote
    jobs: list[Any] = [
        (str(f), f"{found.relative(f).rpartition('/')[0]}/{image_id(f)}.{fmt}", found.identities.get(str(f)))
        for f in found.files
    ]
    jobs, refused = _targets_inside(dst, jobs)  # relative names -> paths that stay under dst
    jobs, clashes = _unique_targets(jobs)
    clashes = refused + clashes
    fn = partial(export_one, fmt=fmt, config=config or PipelineConfig(), overwrite=overwrite,
                 storage_options=storage_options)
    if client is not None:
        from .distributed import SHARD_SIZE, run_sharded

        token = f"{(config or PipelineConfig()).fingerprint()}\0{fmt}\0{overwrite}\0{dst.resolve()}"
        return clashes + run_sharded(
            client, fn, jobs, job="export", token=token, manifest=dst / ".dicomxray-manifest",
            item_token=partial(_item_token, storage_options=storage_options),
            encode=_encode, decode=_decode, shard_size=shard_size or SHARD_SIZE, threads=_threads(remote),
            progress=progress)
    return clashes + run_jobs(fn, jobs, workers=workers, desc="export", progress=progress, threads=_threads(remote))


def _targets_inside(dst: Path, jobs: list[Any]) -> tuple[list[Any], list[ExportResult]]:
    """Jobs whose relative target name (``job[1]``) becomes a path under ``dst``
    (:func:`dicomxray.io.paths.safe_output_path`), and a failure for each name that would leave it."""
    from ..errors import OutputPathError
    from ..io.paths import safe_output_path

    kept: list[Any] = []
    refused: list[ExportResult] = []
    for job in jobs:
        try:
            kept.append((job[0], str(safe_output_path(dst, job[1])), *job[2:]))
        except OutputPathError as exc:
            refused.append(ExportResult(job[0], job[1], "failed", str(exc)))
    return kept, refused


def _unique_targets(jobs: list[Any]) -> tuple[list[Any], list[ExportResult]]:
    """Jobs whose target clashes with no other job's, and a failure for each of the others
    (:func:`dicomxray.io.paths.output_clashes`): ``x.dcm``, ``x.dicom`` and ``x`` in one folder would all
    become ``x.png``, and ``x.png/y.dcm`` needs ``x.png`` as a folder: none is written rather than one silently."""
    from ..io.paths import output_clashes

    claims: dict[str, list[str]] = {}
    for job in jobs:
        claims.setdefault(job[1], []).append(job[0])
    errors = {job[0]: f"{job[1]}: claimed by {len(claims[job[1]])} sources ({', '.join(claims[job[1]])}); "
                      "rename all but one" for job in jobs if len(claims[job[1]]) > 1}
    target = {job[0]: job[1] for job in jobs}
    for first, second in output_clashes({job[0]: Path(job[1]) for job in jobs}):
        if target[first] != target[second]:
            for one, other in ((first, second), (second, first)):
                errors.setdefault(one, f"{target[one]}: clashes with {target[other]} (from {other}): one would "
                                       "be the folder of the other; rename one of the sources")
    return ([job for job in jobs if job[0] not in errors],
            [ExportResult(job[0], job[1], "failed", errors[job[0]]) for job in jobs if job[0] in errors])


def _encode(result: ExportResult) -> list[str]:
    return [result.source, result.target, result.status, result.error]


def _decode(raw: list[str]) -> ExportResult:
    return ExportResult(*raw)


#: This process's cache of the build it is running, kept between the build's files: once its directory refused
#: a write (a full disk), the files left are not decoded for nothing.  A new build gets a new one.
_store: tuple[str, XrayCache] | None = None
_store_lock = threading.Lock()


def _build_store(build: str, cache: CacheConfig) -> XrayCache:
    global _store
    with _store_lock:  # a URL build runs several files at once in each process
        if _store is None or _store[0] != build:
            _store = (build, XrayCache(cache, warn_write_errors=False))  # the build reports once, in its parent
        return _store[1]


def _cache_one(item: str | tuple[str, FileIdentity | None], cache: CacheConfig, config: PipelineConfig,
               storage_options: Mapping[str, Any] | None = None, build: str = "") -> ExportResult:
    source, listed = (item, None) if isinstance(item, str) else item
    store = _build_store(build or uuid.uuid4().hex, cache)
    pipeline = Pipeline(config, opener=Opener(storage_options, {source: listed} if listed is not None else None))
    try:
        outcome = store.fill(source, pipeline)
    except JOB_ERRORS as exc:
        return ExportResult(source, cache.directory, "failed", str(exc))
    if outcome == "unwritten":
        return ExportResult(source, cache.directory, "unwritten", f"{source}: {store.write_error}")
    if outcome == "changed":
        return ExportResult(source, cache.directory, "failed",
                            f"{source}: rendered but not stored in {cache.directory} (the file changed meanwhile)")
    return ExportResult(source, cache.directory, "skipped" if outcome == "hit" else "written")


def _report_unwritten(results: list[ExportResult], cache: CacheConfig) -> list[ExportResult]:
    """One warning for the whole build (every process's results added up) when entries were not written."""
    unwritten = [r for r in results if r.status == "unwritten"]
    if unwritten:
        warnings.warn(f"dicomxray cache: {len(unwritten)} of {len(results)} entries not written to "
                      f"{cache.directory} (first: {unwritten[0].error}); each process stopped writing after its first "
                      "refused write: free space (or fix the permissions) and build again to add them",
                      CacheWarning, stacklevel=3)
    return results


def build_cache(
    files: Sequence[str],
    cache: str | os.PathLike[str] | CacheConfig,
    *,
    config: PipelineConfig | None = None,
    shard: tuple[int, int] = (1, 1),
    workers: int | None = None,
    progress: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    listed: Mapping[str, FileIdentity] | None = None,
    client: Any = None,
    shard_size: int | None = None,
) -> list[ExportResult]:
    """Fill the cache for ``files`` (the ``k``-th of ``n`` shards, counting from 1: ``files[k - 1::n]``).

    Status ``written`` for new entries, ``skipped`` for entries already
    there, ``failed`` (with the error) for bad files.  Any job runner can run
    the shards in parallel: writes are atomic and keys never collide.  URLs are
    read with ``storage_options``; ``listed`` gives their identities from a
    listing (:attr:`RemoteDiscovery.identities`) so no HEAD is needed.  With a
    Dask ``client`` the files are cached by its workers (the cache directory
    must be the same place for them and for this process), ``shard_size`` per
    task, with a completion manifest in ``<cache>/.dicomxray-manifest/``.  ``workers`` as in
    :func:`export_folder`.

    A write the cache's directory refuses (a full disk, no permission) makes that process stop writing and
    stop decoding: the files it has left are ``unwritten``, and one :class:`~dicomxray.errors.CacheWarning`
    for the build names the cache and how many entries were not written.
    """
    k, n = shard
    if not 1 <= k <= n:
        raise ValueError(f"shard must be k/n with 1 <= k <= n, got {k}/{n}")
    cache_config = CacheConfig.of(cache)
    config = config or PipelineConfig()
    fn = partial(_cache_one, cache=cache_config, config=config, storage_options=storage_options,
                 build=uuid.uuid4().hex)
    items: list[Any] = [(f, listed.get(f)) if listed else f for f in list(files)[k - 1 :: n]]
    remote = bool(items) and is_url(files[k - 1])  # the user's list, classified once by its first file
    if client is not None:
        from .distributed import SHARD_SIZE, run_sharded

        token = f"{config.fingerprint()}\0{cache_config!r}"
        return _report_unwritten(run_sharded(client, fn, items, job="cache", token=token,
                           manifest=Path(cache_config.directory) / ".dicomxray-manifest",
                           item_token=partial(_item_token, storage_options=storage_options),
                           encode=_encode, decode=_decode, shard_size=shard_size or SHARD_SIZE,
                           threads=_threads(remote), progress=progress), cache_config)
    return _report_unwritten(run_jobs(fn, items, workers=workers, desc=f"cache {k}/{n}", progress=progress,
                                      threads=_threads(remote)), cache_config)


def _item_token(item: str | tuple[Any, ...], storage_options: Mapping[str, Any] | None = None) -> str:
    """:func:`dicomxray.jobs.distributed.item_token` of a job's source: ``path``, ``(path, listed)`` or
    ``(path, target[, listed])``."""
    from .distributed import item_token

    if isinstance(item, str):
        return item_token(item, storage_options=storage_options)
    listed = item[-1] if isinstance(item[-1], FileIdentity) else None
    return item_token(item[0], {item[0]: listed} if listed is not None else None, storage_options)
