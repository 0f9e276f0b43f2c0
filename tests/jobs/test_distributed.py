"""Preprocessing on Dask: a real LocalCluster (worker processes, TCP scheduler) and a real `dask scheduler` /
`dask worker` pair; shards per task, byte-identical outputs, a killed worker, a dead scheduler and a resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from dicomxray import XrayCache, build_cache, export_folder, pipeline_config, read_xray  # noqa: E402
from dicomxray.cli import main  # noqa: E402
from dicomxray.index import build_index, discover_url  # noqa: E402
from dicomxray.jobs.distributed import connect  # noqa: E402
from dicomxray.testing import chest_phantom, write_dicom  # noqa: E402
from remote_servers import file_server, which  # noqa: E402

CONFIG = pipeline_config(size=32)


def _folder(root: Path, n: int) -> Path:
    for i in range(n):
        write_dicom(root / f"p{i % 3}" / f"{i:03d}.dcm", chest_phantom(64, 80, bits=12, seed=i), bits_stored=12)
    return root


def _pixels(cache: Path, files: list[str]) -> list[bytes]:
    store = XrayCache(cache)
    return [np.asarray(store.get(f, CONFIG).pixels).tobytes() for f in files]  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def cluster():
    with connect("local:2") as client:
        yield client


def test_cluster_outputs_are_byte_identical_to_a_local_run(cluster, tmp_path: Path) -> None:
    root = _folder(tmp_path / "data", 10)
    (root / "p0" / "broken.dcm").write_bytes(b"DICM" * 10)
    files = sorted(str(p) for p in root.rglob("*.dcm"))
    local = export_folder(root, tmp_path / "png-local", config=CONFIG, progress=False)
    remote = export_folder(root, tmp_path / "png-dask", config=CONFIG, progress=False, client=cluster, shard_size=3)
    assert [(r.source, r.status) for r in remote] == [(r.source, r.status) for r in local]
    assert sum(r.status == "failed" for r in remote) == 1
    for png in (tmp_path / "png-local").rglob("*.png"):
        assert png.read_bytes() == (tmp_path / "png-dask" / png.relative_to(tmp_path / "png-local")).read_bytes()
    assert not (tmp_path / "png-dask" / ".dicomxray-manifest").exists()  # removed once complete

    salt = b"s" * 16
    build_index(root, tmp_path / "local.parquet", salt=salt, progress=False, workers=1)
    build_index(root, tmp_path / "dask.parquet", salt=salt, progress=False, client=cluster, shard_size=3)
    assert (tmp_path / "local.parquet").read_bytes() == (tmp_path / "dask.parquet").read_bytes()

    build_cache(files, tmp_path / "cache-local", config=CONFIG, progress=False)
    results = build_cache(files, tmp_path / "cache-dask", config=CONFIG, progress=False, client=cluster, shard_size=3)
    assert [r.status for r in results].count("written") == 10
    good = [f for f in files if "broken" not in f]
    names = sorted(p.name for p in XrayCache(tmp_path / "cache-local").entries())
    assert names == sorted(p.name for p in XrayCache(tmp_path / "cache-dask").entries())  # same keys
    assert _pixels(tmp_path / "cache-local", good) == _pixels(tmp_path / "cache-dask", good)


def test_cli_scheduler_option_matches_a_local_index(cluster, tmp_path: Path) -> None:
    root = _folder(tmp_path / "data", 6)
    assert main(["index", str(root), "-o", str(tmp_path / "a.parquet"), "--quiet"]) == 0
    shutil.copy(tmp_path / "a.parquet.salt", tmp_path / "b.parquet.salt")
    assert main(["index", str(root), "-o", str(tmp_path / "b.parquet"), "--quiet", "--scheduler", "local:1",
                 "--shard-size", "2"]) == 0
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_a_killed_worker_loses_nothing(cluster, tmp_path: Path) -> None:
    root = _folder(tmp_path / "data", 16)
    with file_server(root, delay=0.15) as server:  # every request takes 150 ms: shards run long enough to kill one
        found = discover_url(server.url + "/")
        result: dict[str, object] = {}

        def run() -> None:
            result["r"] = build_cache(found.files, tmp_path / "cache", config=CONFIG, progress=False,
                                      client=cluster, shard_size=2)

        thread = threading.Thread(target=run)
        thread.start()
        manifests = tmp_path / "cache" / ".dicomxray-manifest"
        deadline = time.monotonic() + 60
        while not list(manifests.rglob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.02)
        victim = next(iter(cluster.run(os.getpid).values()))
        os.kill(victim, signal.SIGKILL)  # mid-run: its shard is rescheduled
        thread.join(120)
        statuses = [r.status for r in result["r"]]  # type: ignore[attr-defined]
        assert len(statuses) == 16 and "failed" not in statuses
        assert XrayCache(tmp_path / "cache").verify() == {"ok": 16, "corrupt": 0}
        _same_as_local(tmp_path / "cache", found.files, server.url, root)
    cluster.wait_for_workers(2, timeout=60)


def _same_as_local(cache: Path, urls: list[str], base: str, root: Path) -> None:
    """Every URL's entry (looked up by its ETag: one HEAD) holds the pixels of the same file read locally."""
    store = XrayCache(cache)
    for url in urls:
        image = store.get(url, CONFIG)
        assert image is not None, url
        assert np.array_equal(image.pixels, read_xray(root / url[len(base) + 1 :], 32))


def test_a_run_resumes_after_the_scheduler_dies(tmp_path: Path) -> None:
    dask = which("dask")
    if dask is None:
        pytest.skip("the dask command is not installed")
    root = _folder(tmp_path / "data", 16)
    scheduler_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([dask, "scheduler", "--scheduler-file", str(scheduler_file), "--port", "0",
                               "--no-dashboard", "--no-show"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", "2", "--nthreads", "1",
                                       "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with file_server(root, delay=0.15) as server:
            cli = subprocess.Popen(
                [sys.executable, "-m", "dicomxray", "cache", "build", server.url + "/", "--cache-dir",
                 str(tmp_path / "cache"), "--size", "32", "--scheduler", address, "--shard-size", "2", "--quiet"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            manifests = tmp_path / "cache" / ".dicomxray-manifest"
            deadline = time.monotonic() + 120
            while len(list(manifests.rglob("*.json"))) < 2 and time.monotonic() < deadline and cli.poll() is None:
                time.sleep(0.02)
            procs[0].kill()  # the scheduler dies mid-run
            try:
                cli.wait(timeout=30)
            except subprocess.TimeoutExpired:
                cli.kill()  # a client waiting for its scheduler: the whole job is lost, as on a cluster
                cli.wait()
            finished = len(list(manifests.rglob("*.json")))
            assert 2 <= finished < 8, cli.stdout.read() if cli.stdout else ""
            for p in procs[1:]:
                p.kill()
            found = discover_url(server.url + "/")
            with connect("local:2") as client, distributed.get_task_stream(client) as tasks:
                results = build_cache(found.files, tmp_path / "cache", config=CONFIG, progress=False,
                                      client=client, shard_size=2)
            _same_as_local(tmp_path / "cache", found.files, server.url, root)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert len(tasks.data) == 8 - finished  # finished shards are read from the manifest, not run again
    assert [r.status for r in results].count("failed") == 0 and len(results) == 16
    assert not manifests.exists()
    assert XrayCache(tmp_path / "cache").verify() == {"ok": 16, "corrupt": 0}
