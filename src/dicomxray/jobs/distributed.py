"""Batch jobs on a Dask cluster: shards of hundreds of files per task, a completion manifest, retries.

The same code runs on a laptop (``local:N``: a ``LocalCluster`` of N worker
processes) and on a cluster (``tcp://scheduler:8786``)::

    from dicomxray.jobs.distributed import connect
    with connect("tcp://scheduler:8786") as client:
        build_index("s3://bucket/archive", "index.parquet", client=client, storage_options={...})
        build_cache(files, "/shared/cache", client=client)
        export_folder("s3://bucket/archive", "/shared/png", client=client)

Dask schedules, retries and reports; nothing here is a scheduler.  Each task
runs one shard (``shard_size`` files, hundreds by default) through the same
function a local run uses, so the outputs are byte-identical to a local run's.
The client records each finished shard in a manifest folder
(``<output>/.dicomxray-manifest/<run>/<shard>.json``, written then renamed);
rerunning the same job after the scheduler (or the client) died skips those
shards.  A shard's name is a hash of the job and its files' identities, so a
changed input is never mistaken for a finished one.  A worker killed
mid-shard loses nothing: the scheduler runs the shard again elsewhere
(``distributed.scheduler.allowed-failures`` times), and every output is
written to a temporary file and renamed, so no entry is ever partial.  Tasks
are named ``dicomxray-<job>-<shard>``: the dashboard's progress bars group them.

Needs the ``dask`` extra (``pip install "dicomxray[dask]"``) on the client and
dicomxray with the same extras on every worker.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from ..io.atomic import atomic_write
from ..io.translate import missing_extra

__all__ = ["SHARD_SIZE", "connect", "digest", "item_token", "run_sharded"]

T = TypeVar("T")
R = TypeVar("R")

#: Files per task: big enough that scheduling costs nothing next to the work, small enough to balance.
SHARD_SIZE = 256
#: Retries of a shard whose task raised (a worker that died is rescheduled by Dask on its own).
RETRIES = 2


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise missing_extra("distributed", "a Dask cluster") from None
    return distributed


@contextmanager
def connect(scheduler: str, **cluster_options: Any) -> Iterator[Any]:
    """A ``distributed.Client`` for ``scheduler``, closed (with its cluster, for ``local:N``) on exit.

    Parameters
    ----------
    scheduler : str
        ``local:N`` starts a ``LocalCluster`` of N worker processes (one thread
        each) on this machine; anything else is a scheduler address
        (``tcp://host:8786``) or a scheduler file path (``*.json``).
    **cluster_options
        Passed to ``LocalCluster`` (``local:N`` only).
    """
    distributed = _distributed()
    if scheduler.startswith("local:"):
        try:
            n = int(scheduler.partition(":")[2])
        except ValueError:
            raise ValueError(f"scheduler {scheduler!r}: local:N needs a number of workers") from None
        options = {"n_workers": n, "threads_per_worker": 1, "processes": True, "dashboard_address": ":0",
                   **cluster_options}
        with distributed.LocalCluster(**options) as cluster, distributed.Client(cluster) as client:
            yield client
        return
    if scheduler.endswith(".json"):
        with distributed.Client(scheduler_file=scheduler) as client:
            yield client
        return
    with distributed.Client(scheduler) as client:
        yield client


def run_chunk(fn: Callable[[T], R], items: Sequence[T], threads: int = 1, processes: int = 0) -> list[R]:
    """``[fn(x) for x in items]``, ``threads`` at a time (reads of URLs wait on the network, not the CPU);
    ``processes``: worker processes sharing this machine's cores, told to the decode thread policy (0: unknown)."""
    if processes:
        from ..pixels.decode import share_cores

        share_cores(processes)
    if threads <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(threads, len(items))) as pool:
        return list(pool.map(fn, items))


def digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def run_sharded(
    client: Any,
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    job: str,
    token: str,
    manifest: str | os.PathLike[str],
    item_token: Callable[[T], str] = repr,
    encode: Callable[[R], Any] = lambda r: r,
    decode: Callable[[Any], R] = lambda r: r,
    shard_size: int = SHARD_SIZE,
    threads: int = 1,
    progress: bool = True,
) -> list[R]:
    """``[fn(x) for x in items]`` on ``client``'s workers, in order, one task per shard of ``shard_size`` items.

    Parameters
    ----------
    job, token
        Name the job (``index``, ``cache``, ``export``) and everything besides the
        items that decides its outputs (options, target); both go into every shard's name.
    manifest
        Folder of the completion manifest (``<manifest>/<run>/<shard>.json``; removed when the run completes).
    item_token
        What identifies an item's input (path and stat, URL and ETag...).
    encode, decode
        A shard's results to and from JSON (the manifest's format).
    threads
        Items a task runs at once (for URLs).
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    distributed = _distributed()
    from tqdm import tqdm

    shards = [list(items[i : i + shard_size]) for i in range(0, len(items), shard_size)]
    names = [digest(job, token, *(item_token(x) for x in shard)) for shard in shards]
    run_dir = Path(manifest) / digest(job, token, *names)
    done: dict[int, list[R]] = {}
    for i, name in enumerate(names):
        entry = run_dir / f"{name}.json"
        if entry.exists():
            try:
                done[i] = [decode(r) for r in json.loads(entry.read_text(encoding="utf-8"))]
            except (ValueError, TypeError, KeyError):
                entry.unlink()  # an entry we cannot read is a shard to run again
    task = partial(run_chunk, fn, threads=threads, processes=_processes_per_host(client))
    with tqdm(total=len(items), unit="file", desc=f"{job} (dask)", disable=not progress) as bar:
        bar.update(sum(len(shards[i]) for i in done))
        futures = {client.submit(task, shards[i], key=f"dicomxray-{job}-{names[i]}", retries=RETRIES, pure=False): i
                   for i in range(len(shards)) if i not in done}
        for future in distributed.as_completed(futures):
            i = futures[future]
            results = future.result()
            with atomic_write(run_dir / f"{names[i]}.json") as fh:
                fh.write(json.dumps([encode(r) for r in results]).encode())
            done[i] = results
            bar.update(len(results))
    shutil.rmtree(run_dir, ignore_errors=True)
    with suppress(OSError):
        Path(manifest).rmdir()  # only when no other run left its manifest there
    return [r for i in range(len(shards)) for r in done[i]]


def _processes_per_host(client: Any) -> int:
    """Worker processes on the busiest host: they share its cores, so each decode gets its part of them."""
    hosts: dict[str, int] = {}
    for worker in client.scheduler_info(n_workers=-1).get("workers", {}).values():
        hosts[worker.get("host", "")] = hosts.get(worker.get("host", ""), 0) + 1
    return max(hosts.values(), default=1)


def item_token(path: str, listed: Mapping[str, Any] | None = None,
               storage_options: Mapping[str, Any] | None = None) -> str:
    """What identifies an input in a shard's name: its :meth:`FileIdentity.token` (path, size, mtime, inode
    and ctime; a URL's listed identity, else one HEAD), the token every other consumer uses; a path that
    cannot be identified (vanished) is named as such, so its shard is run and reports the error."""
    from ..errors import DicomXrayError
    from ..io.source import Opener

    try:
        return Opener(storage_options, listed).identity(path).token()
    except DicomXrayError as exc:
        return f"{path}\0{type(exc).__name__}"
