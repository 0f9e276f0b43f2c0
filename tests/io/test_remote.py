"""Remote sources (issue 13): an S3 API served by moto's standalone server and spoken to through s3fs/botocore,
and a plain HTTP server for https://-style reads, latency and failures.  No client is mocked."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

from torch.utils.data import DataLoader, RandomSampler  # noqa: E402

from dicomxray import (  # noqa: E402
    DicomXrayDataset,
    MissingExtraError,
    RemoteAccessError,
    RemoteSourceError,
    SourceFileNotFoundError,
    XrayCache,
    read_xray,
)
from dicomxray.cli import main  # noqa: E402
from dicomxray.data.prefetch import PrefetchSampler  # noqa: E402
from dicomxray.index import build_index, discover_url, read_index, select  # noqa: E402
from dicomxray.testing import chest_phantom, write_dicom  # noqa: E402
from remote_servers import file_server, make_bucket, moto_server, s3_options, upload  # noqa: E402


def _folder(root: Path, n: int = 6, size: tuple[int, int] = (90, 110)) -> Path:
    for i in range(n):
        write_dicom(root / f"s{i // 3}" / f"img{i}.dcm", chest_phantom(*size, bits=12, seed=i), bits_stored=12)
    return root


@pytest.fixture(scope="module")
def s3():
    """(endpoint, storage_options) of a moto S3 server holding ``s3://data/train/...`` (6 DICOMs)."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    with moto_server() as endpoint:
        make_bucket(endpoint, "data")
        yield endpoint, s3_options(endpoint)


@pytest.fixture
def local(tmp_path: Path) -> Path:
    return _folder(tmp_path / "local")


# ----------------------------------------------------------------------------- S3 through s3fs + moto
def test_s3_reads_match_local_files(s3, local: Path, tmp_path: Path) -> None:
    endpoint, so = s3
    urls = upload(endpoint, local, "data/match")
    for url, path in zip(urls, sorted(local.rglob("*.dcm")), strict=True):
        assert np.array_equal(read_xray(url, 48, storage_options=so), read_xray(path, 48))
    index = build_index("s3://data/match", tmp_path / "i.parquet", storage_options=so, salt=b"k" * 16, progress=False)
    assert index.root == "s3://data/match" and index.rows == 6 and index.errors == 0
    rows = select(read_index(tmp_path / "i.parquet"))
    assert rows["file"].tolist() == urls
    local_rows = read_index(build_index(local, tmp_path / "l.parquet", salt=b"k" * 16, progress=False).path)
    tags = ["SOPInstanceUID", "Rows", "Columns", "BitsStored", "pixel_data_offset", "pixel_data_length", "patient_hash"]
    assert rows[tags].reset_index(drop=True).equals(local_rows[tags].reset_index(drop=True))
    again = build_index("s3://data/match", tmp_path / "i.parquet", storage_options=so, salt=b"k" * 16, progress=False)
    assert (again.read, again.reused) == (0, 6)  # the listing's ETags let every row be reused


def test_s3_errors_name_the_url(s3) -> None:
    _, so = s3
    with pytest.raises(SourceFileNotFoundError, match="s3://data/nope.dcm"):
        read_xray("s3://data/nope.dcm", storage_options=so)
    with pytest.raises(SourceFileNotFoundError, match="s3://data/empty-prefix"):
        DicomXrayDataset("s3://data/empty-prefix", storage_options=so)


def test_missing_credential_is_an_access_error(s3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    endpoint, _ = s3
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    so = {"client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    with pytest.raises(RemoteAccessError, match="s3://data/any.dcm") as err:
        read_xray("s3://data/any.dcm", storage_options=so)
    assert isinstance(err.value, PermissionError)
    assert pickle.loads(pickle.dumps(err.value)).args == err.value.args


def test_overwritten_object_is_never_served_stale(s3, tmp_path: Path) -> None:
    endpoint, so = s3
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **so)
    uids = dict(sop_uid="1.2.826.0.1.1", study_uid="1.2.826.0.1.2", series_uid="1.2.826.0.1.3")  # same sizes
    a = write_dicom(tmp_path / "a.dcm", chest_phantom(80, 96, bits=12, seed=1), bits_stored=12, **uids)
    b = write_dicom(tmp_path / "b.dcm", chest_phantom(80, 96, bits=12, seed=2), bits_stored=12, **uids)
    assert a.stat().st_size == b.stat().st_size
    fs.put_file(str(a), "data/stale/x.dcm")
    cache = tmp_path / "cache"
    strict = DicomXrayDataset("s3://data/stale", size=32, cache=cache, storage_options=so, remote_identity="request")
    listed = DicomXrayDataset("s3://data/stale", size=32, cache=cache, storage_options=so, remote_identity="listing")
    default = DicomXrayDataset("s3://data/stale", size=32, cache=cache, storage_options=so)  # "auto"

    def epoch(ds: DicomXrayDataset) -> np.ndarray:
        batch = next(iter(DataLoader(ds, batch_size=1, sampler=PrefetchSampler(range(1), batch_size=1, dataset=ds))))
        return batch["image"][0, 0].numpy()

    old, new = (read_xray(p, 32).astype(np.float32) / 255 for p in (a, b))
    assert np.allclose(epoch(strict), old) and np.allclose(epoch(listed), old)
    assert np.allclose(next(iter(DataLoader(default)))["image"][0, 0].numpy(), old)
    fs.put_file(str(b), "data/stale/x.dcm")  # same key, same size: only the ETag tells
    assert np.allclose(strict[0]["image"][0].numpy(), new)  # a HEAD per cached read sees the new ETag at once
    assert np.allclose(epoch(listed), new)  # a new epoch lists the bucket again
    assert np.allclose(next(iter(DataLoader(default)))["image"][0, 0].numpy(), new)  # a plain DataLoader's pass too
    assert np.allclose(DicomXrayDataset("s3://data/stale", size=32, cache=cache, storage_options=so,
                                        remote_identity="listing")[0]["image"][0].numpy(), new)
    headers = [json.loads(e.read_bytes()[8 : 8 + int.from_bytes(e.read_bytes()[4:8], "little")])
               for e in XrayCache(cache).entries()]
    assert len(headers) == 2 and len({h["source"]["etag"] for h in headers}) == 2  # one entry per version


def test_dataset_from_a_bucket_with_two_forked_workers(s3, local: Path, tmp_path: Path) -> None:
    endpoint, so = s3
    upload(endpoint, local, "data/workers")
    ds = DicomXrayDataset("s3://data/workers", size=40, cache=tmp_path / "c", storage_options=so)
    ds[0]  # the parent has used its client before the workers fork (fsspec#835, s3fs#914)
    reference = {i: read_xray(p, 40) for i, p in enumerate(sorted(local.rglob("*.dcm")))}
    for epoch in range(2):
        sampler = PrefetchSampler(RandomSampler(ds), batch_size=2, num_workers=2, dataset=ds)
        seen = []
        for batch in DataLoader(ds, batch_size=2, sampler=sampler, num_workers=2,
                                multiprocessing_context="fork"):
            for i, img in zip(batch["meta"]["index"].tolist(), batch["image"], strict=True):
                assert np.allclose(img[0].numpy(), reference[i] / 255, atol=1e-6)
                seen.append(i)
        assert sorted(seen) == list(range(6)), epoch
    assert XrayCache(tmp_path / "c").verify() == {"ok": 6, "corrupt": 0}


def test_index_and_from_index_in_the_bucket(s3, local: Path, tmp_path: Path) -> None:
    endpoint, so = s3
    upload(endpoint, local, "data/indexed")
    out = tmp_path / "index.parquet"
    assert main(["index", "s3://data/indexed", "-o", str(out), "--storage-options", json.dumps(so), "--quiet"]) == 0
    upload(endpoint, tmp_path, "data/indexes")  # the index itself in the bucket too
    ds = DicomXrayDataset.from_index("s3://data/indexes/index.parquet", "Rows == 90", size=24, storage_options=so)
    assert len(ds) == 6 and all(f.startswith("s3://data/indexed/") for f in ds.files)
    assert ds[5]["image"].shape == (1, 24, 24)


def test_cli_over_a_bucket(s3, local: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint, so = s3
    upload(endpoint, local, "data/cli")
    opts = ["--storage-options", json.dumps(so)]
    assert main(["cache", "build", "s3://data/cli", "--cache-dir", str(tmp_path / "c"), "--size", "32", "--quiet",
                 *opts]) == 0
    assert "6 written" in capsys.readouterr().out
    assert main(["export", "s3://data/cli", str(tmp_path / "png"), "--size", "32", "--quiet", "--workers", "1",
                 *opts]) == 0
    assert sorted(p.relative_to(tmp_path / "png").as_posix() for p in (tmp_path / "png").rglob("*.png")) == [
        f"s{i // 3}/img{i}.png" for i in range(6)]
    assert main(["preview", "s3://data/cli", "--out", str(tmp_path / "p.png"), "--count", "2", *opts]) == 0
    assert main(["bench", "s3://data/cli", "--limit", "1", "--repeat", "1", "--size", "32", *opts]) == 0
    with pytest.raises(SystemExit):
        main(["index", "s3://data/cli", "--storage-options", "[1, 2]"])
    assert "JSON object" in capsys.readouterr().err


# ----------------------------------------------------------------------------- plain HTTP
def test_one_get_per_file_and_no_head(local: Path) -> None:
    with file_server(local) as server:
        image = read_xray(f"{server.url}/s0/img1.dcm", 32)
        assert np.array_equal(image, read_xray(local / "s0" / "img1.dcm", 32))
        assert [r[0] for r in server.requests()] == ["GET"]


def test_index_reads_a_ranged_prefix_and_extends_it_only_for_long_headers(tmp_path: Path) -> None:
    root = tmp_path / "web"
    write_dicom(root / "short.dcm", chest_phantom(90, 110, bits=12, seed=1), bits_stored=12)
    write_dicom(root / "long.dcm", chest_phantom(90, 110, bits=12, seed=2), bits_stored=12,
                extra={"ImageComments": "x" * 40_000})  # 40 KB of header before the pixels
    with file_server(root) as server:
        report = build_index([f"{server.url}/long.dcm", f"{server.url}/short.dcm"], tmp_path / "i.parquet",
                             root=server.url, progress=False)
        short, long = server.requests("/short.dcm"), server.requests("/long.dcm")
    assert report.errors == 0
    assert short == [("GET", "/short.dcm", "bytes=0-16383")]  # one ranged GET: the header fits
    assert [r[0] for r in long] == ["GET", "GET"] and long[0][2] == "bytes=0-16383"
    rows = read_index(tmp_path / "i.parquet")
    local = read_index(build_index(root, tmp_path / "l.parquet", progress=False).path)
    cols = ["path", "size", "Rows", "pixel_data_offset", "pixel_data_length", "TransferSyntaxUID"]
    assert rows[cols].equals(local[cols])


def test_transient_errors_are_retried_with_backoff(local: Path) -> None:
    with file_server(local) as server:
        server.fail("/s0/img0.dcm", "503", "reset", "500")
        assert read_xray(f"{server.url}/s0/img0.dcm", 32).shape == (32, 32)
        assert len(server.requests("/s0/img0.dcm")) == 4
        server.fail("/s0/img2.dcm", *["503"] * 5)
        with pytest.raises(RemoteSourceError, match=r"/s0/img2.dcm.*gave up after 5 attempts"):
            read_xray(f"{server.url}/s0/img2.dcm")


def test_refused_and_missing_are_not_retried(local: Path) -> None:
    with file_server(local) as server:
        server.fail("/s0/img0.dcm", "403")
        with pytest.raises(RemoteAccessError, match=f"{server.url}/s0/img0.dcm"):
            read_xray(f"{server.url}/s0/img0.dcm")
        with pytest.raises(SourceFileNotFoundError, match="nothing.dcm"):
            read_xray(f"{server.url}/nothing.dcm")
        assert len(server.requests("/s0/img0.dcm")) == 1 and len(server.requests("/nothing.dcm")) == 1


def test_http_folder_listing_and_sniffing(tmp_path: Path) -> None:
    root = _folder(tmp_path / "web", n=2)
    write_dicom(root / "IM000001", chest_phantom(60, 70, bits=12, seed=5), bits_stored=12)  # no extension
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.dcm").write_bytes(b"x")
    with file_server(root) as server:
        found = discover_url(server.url + "/")
        assert [u.rpartition("/")[2] for u in found.files] == ["IM000001", "img0.dcm", "img1.dcm"]
        assert found.skipped == 1
        assert all(r[2] == "bytes=0-511" for r in server.requests("/IM000001"))


def test_missing_extra_names_the_pip_command() -> None:
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed")
    with pytest.raises(MissingExtraError, match=r'pip install "dicomxray\[gcs\]"') as err:
        read_xray("gs://bucket/x.dcm")
    assert isinstance(err.value, ImportError)


def test_a_listing_per_epoch_is_shared_by_the_workers(local: Path, tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in sorted(local.rglob("*.dcm")):
        (flat / p.name).write_bytes(p.read_bytes())
    with file_server(flat) as server:
        ds = DicomXrayDataset(server.url + "/", size=24, cache=tmp_path / "c", remote_identity="listing")
        sampler = PrefetchSampler(RandomSampler(ds), batch_size=2, num_workers=2, dataset=ds)
        loader = DataLoader(ds, batch_size=2, sampler=sampler, num_workers=2, multiprocessing_context="fork")
        for _ in range(2):
            assert sum(len(b["image"]) for b in loader) == 6
        # the listing for a third epoch runs in a background thread from the end of the second; what the next pass
        # does first in the main process (start_epoch) waits for it, so the count below no longer races that thread
        ds.start_epoch(-1)
        pages = [r for r in server.requests("/") if r[0] == "GET"]
    assert len(pages) == 3  # the data set's own listing, then one per ended epoch in the main process, none in workers


# ----------------------------------------------------------------------------- a cached bucket with the defaults
@pytest.fixture(scope="module")
def logged_s3(tmp_path_factory: pytest.TempPathFactory):
    """(endpoint, storage_options, requests) of a moto server whose request log (werkzeug's, on stderr) is kept:
    ``requests()`` lists ``(method, path)`` of every request it answered so far, counted at the server."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    import re
    import subprocess
    import sys
    import time

    from remote_servers import free_port, wait_for

    log = tmp_path_factory.mktemp("moto") / "requests.log"
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=out)
    endpoint = f"http://127.0.0.1:{port}"
    line = re.compile(r'"(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/')

    def requests() -> list[tuple[str, str]]:
        time.sleep(0.3)  # a response is logged after it is sent
        return [(m.group(1), m.group(2)) for m in map(line.search, log.read_text().splitlines()) if m]

    try:
        wait_for(endpoint)
        make_bucket(endpoint, "logged")
        yield endpoint, s3_options(endpoint), requests
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class _Probe(torch.utils.data.Dataset):
    """A data set's samples with the number of storage clients the reading process holds beside each."""

    def __init__(self, ds: DicomXrayDataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        from dicomxray.io import remote

        return {"image": self.ds[i]["image"], "index": i, "clients": len(remote._FILESYSTEMS)}


def test_the_default_remote_identity_is_auto() -> None:
    import inspect

    assert inspect.signature(DicomXrayDataset).parameters["remote_identity"].default == "auto"


@pytest.mark.parametrize("persistent", [False, True], ids=["fresh-workers", "persistent-workers"])
def test_a_fresh_workers_cache_hits_make_no_request(logged_s3, local: Path, tmp_path: Path, persistent: bool) -> None:
    endpoint, so, requests = logged_s3
    prefix = f"logged/hits-{persistent}"
    upload(endpoint, local, prefix)
    ds = _Probe(DicomXrayDataset(f"s3://{prefix}", size=24, cache=tmp_path / "c", storage_options=so))  # defaults
    loader = DataLoader(ds, batch_size=2, num_workers=2, persistent_workers=persistent, multiprocessing_context="fork")
    assert sum(len(b["image"]) for b in loader) == 6  # fills the cache
    for _ in range(2):
        before = len(requests())
        clients = [c for b in loader for c in b["clients"].tolist()]
        during = requests()[before:]
        if not persistent:  # (persistent workers built theirs for the first pass's misses)
            assert clients == [0] * 6  # no fresh worker built a storage client
        # the main process listed the prefix once for the pass (one request per 1,000 objects); no GET or HEAD of an
        # object, no listing in a worker
        assert len(during) == 1 and "list-type=2" in during[0][1], during


@pytest.mark.parametrize("identity", ["auto", "listing"])
@pytest.mark.parametrize("persistent", [False, True], ids=["fresh-workers", "persistent-workers"])
def test_an_object_overwritten_mid_pass_is_seen_by_the_next_pass(logged_s3, tmp_path: Path, persistent: bool,
                                                                  identity: str) -> None:
    endpoint, so, _ = logged_s3
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **so)
    uids = dict(sop_uid="1.2.826.0.1.1", study_uid="1.2.826.0.1.2", series_uid="1.2.826.0.1.3")
    a = write_dicom(tmp_path / "a.dcm", chest_phantom(80, 96, bits=12, seed=1), bits_stored=12, **uids)
    b = write_dicom(tmp_path / "b.dcm", chest_phantom(80, 96, bits=12, seed=2), bits_stored=12, **uids)
    assert a.stat().st_size == b.stat().st_size  # only the ETag tells the versions apart
    prefix = f"logged/overwrite-{persistent}-{identity}"
    for i in range(6):
        fs.put_file(str(a), f"{prefix}/{i}.dcm")
    ds = DicomXrayDataset(f"s3://{prefix}", size=32, cache=tmp_path / "c", storage_options=so,
                          remote_identity=identity)  # type: ignore[arg-type]
    loader = DataLoader(ds, batch_size=1, num_workers=2, persistent_workers=persistent, multiprocessing_context="fork")
    old, new = (read_xray(p, 32).astype(np.float32) / 255 for p in (a, b))
    for n, batch in enumerate(loader):  # the cache filled with the old version
        assert np.allclose(batch["image"][0, 0].numpy(), old)
        if n == 5:  # its last object read (and cached): overwritten before the pass ends
            fs.put_file(str(b), f"{prefix}/5.dcm")
    images = {int(batch["meta"]["index"][0]): batch["image"][0, 0].numpy() for batch in loader}
    assert np.allclose(images[5], new) and all(np.allclose(images[i], old) for i in range(5))


def test_a_listing_started_at_a_fork_mid_pass_does_not_serve_the_next_pass(logged_s3, tmp_path: Path) -> None:
    import os

    endpoint, so, _ = logged_s3
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **so)
    uids = dict(sop_uid="1.2.826.0.1.1", study_uid="1.2.826.0.1.2", series_uid="1.2.826.0.1.3")
    a = write_dicom(tmp_path / "a.dcm", chest_phantom(80, 96, bits=12, seed=1), bits_stored=12, **uids)
    b = write_dicom(tmp_path / "b.dcm", chest_phantom(80, 96, bits=12, seed=2), bits_stored=12, **uids)
    for i in range(6):
        fs.put_file(str(a), f"logged/forked/{i}.dcm")
    ds = DicomXrayDataset("s3://logged/forked", size=32, cache=tmp_path / "c", storage_options=so)

    class Order:  # object 5 first; asks the length as PyTorch's samplers do
        def __iter__(self):
            len(ds)
            return iter([5, 0, 1, 2, 3, 4])

    loader = DataLoader(ds, batch_size=1, sampler=Order())
    old, new = (read_xray(p, 32).astype(np.float32) / 255 for p in (a, b))
    for _ in range(2):  # the first pass uses the listing the data set was built from: a second one fills the cache
        assert sum(len(batch["image"]) for batch in loader) == 6
    for n, _batch in enumerate(loader):
        if n == 1:  # object 5 read (a hit); then a fork (not a DataLoader's) starts a listing mid-pass
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            ds._listing._job.future.result()
            fs.put_file(str(b), "logged/forked/5.dcm")  # overwritten after that listing, before the pass ends
    images = {int(batch["meta"]["index"][0]): batch["image"][0, 0].numpy() for batch in loader}
    assert np.allclose(images[5], new)
