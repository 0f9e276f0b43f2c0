"""A resumed Dask run sees a file rewritten in place with its size and mtime restored: the manifest names
each shard by the one identity token (path, size, mtime, inode, ctime), as the cache key, the export stamp and
the incremental index do.  The killed run is the one of test_distributed: its manifest outlives it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from PIL import Image  # noqa: E402

from dicomxray import XrayCache, build_cache, export_folder, pipeline_config, read_xray  # noqa: E402
from dicomxray.index import build_index, read_index  # noqa: E402
from dicomxray.jobs import distributed as jobs_distributed  # noqa: E402
from dicomxray.jobs.distributed import connect  # noqa: E402
from dicomxray.testing import chest_phantom, write_dicom  # noqa: E402

CONFIG = pipeline_config(size=32)
UIDS = {"study_uid": "1.2.3.4", "series_uid": "1.2.3.4.5"}


def _write(path: Path, seed: int, sop: str) -> Path:
    return write_dicom(path, chest_phantom(64, 80, bits=12, seed=seed), bits_stored=12, sop_uid=sop, **UIDS)


def _folder(root: Path) -> list[str]:
    return [str(_write(root / f"{i:03d}.dcm", i, f"1.2.3.4.5.{i}")) for i in range(4)]


def _rewrite_in_place(path: Path, seed: int, sop: str, scratch: Path) -> None:
    """New content in the same inode, the same size, the old mtime put back (as ``cp -p`` onto it would)."""
    st = path.stat()
    new = _write(scratch, seed, sop).read_bytes()
    assert len(new) == st.st_size
    with open(path, "r+b") as fh:
        fh.write(new)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


@pytest.fixture(scope="module")
def cluster():
    with connect("local:1") as client:
        yield client


def test_export_resumed_after_an_in_place_rewrite_renders_the_new_file(cluster, tmp_path: Path, monkeypatch) -> None:
    files = _folder(tmp_path / "data")
    monkeypatch.setattr(jobs_distributed.shutil, "rmtree", lambda *a, **k: None)
    export_folder(tmp_path / "data", tmp_path / "png", config=CONFIG, progress=False, client=cluster, shard_size=1)
    assert list((tmp_path / "png" / ".dicomxray-manifest").rglob("*.json"))  # what the killed run left
    _rewrite_in_place(Path(files[1]), 99, "1.2.3.4.5.1", tmp_path / "new.dcm")
    monkeypatch.undo()
    results = export_folder(tmp_path / "data", tmp_path / "png", config=CONFIG, progress=False, client=cluster,
                            shard_size=1)
    status = {Path(r.source).name: r.status for r in results}
    assert status["001.dcm"] == "written"
    png = np.asarray(Image.open(tmp_path / "png" / "001.png"))
    assert np.array_equal(png, read_xray(files[1], 32))  # not the stale image of the old content


def test_index_resumed_after_an_in_place_rewrite_reads_the_new_header(cluster, tmp_path: Path, monkeypatch) -> None:
    files = _folder(tmp_path / "data")
    salt = b"s" * 16
    monkeypatch.setattr(jobs_distributed.shutil, "rmtree", lambda *a, **k: None)
    monkeypatch.setattr("dicomxray.index.build.write_index", _die)  # killed before the index is written
    with pytest.raises(_Killed):
        build_index(tmp_path / "data", tmp_path / "i.parquet", salt=salt, progress=False, client=cluster, shard_size=1)
    _rewrite_in_place(Path(files[1]), 99, "1.2.3.4.5.77", tmp_path / "new.dcm")
    monkeypatch.undo()
    report = build_index(tmp_path / "data", tmp_path / "i.parquet", salt=salt, progress=False, client=cluster,
                         shard_size=1)
    assert report.read == 4
    frame = read_index(tmp_path / "i.parquet")
    uids = dict(zip(frame["path"], frame["SOPInstanceUID"], strict=True))
    assert uids["001.dcm"] == "1.2.3.4.5.77"


class _Killed(Exception):
    pass


def _die(*args: object, **kwargs: object) -> None:
    raise _Killed


def test_cache_build_resumed_after_an_in_place_rewrite_builds_what_it_reports(cluster, tmp_path: Path,
                                                                              monkeypatch) -> None:
    files = _folder(tmp_path / "data")
    monkeypatch.setattr(jobs_distributed.shutil, "rmtree", lambda *a, **k: None)
    build_cache(files, tmp_path / "cache", config=CONFIG, progress=False, client=cluster, shard_size=1)
    _rewrite_in_place(Path(files[1]), 99, "1.2.3.4.5.1", tmp_path / "new.dcm")
    monkeypatch.undo()
    results = build_cache(files, tmp_path / "cache", config=CONFIG, progress=False, client=cluster, shard_size=1)
    assert results[1].status == "written"
    image = XrayCache(tmp_path / "cache").get(files[1], CONFIG)
    assert image is not None  # the entry it reports is there
    assert np.array_equal(image.pixels, read_xray(files[1], 32))
