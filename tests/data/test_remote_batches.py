"""Batches over a real local HTTP server: requests counted per cached read in each identity mode, a batch's
errors naming the URL, and a batch's requests overlapping."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

from dicomxray import DicomXrayDataset, RemoteSourceError, SourceFileNotFoundError  # noqa: E402
from dicomxray.testing import chest_phantom, write_dicom  # noqa: E402
from remote_servers import file_server  # noqa: E402

N = 8


@pytest.fixture
def flat(tmp_path: Path) -> Path:
    for i in range(N):
        write_dicom(tmp_path / "flat" / f"{i}.dcm", chest_phantom(60, 72, bits=12, seed=i), bits_stored=12)
    return tmp_path / "flat"


def _two_epochs(ds: DicomXrayDataset, batched: bool) -> None:
    from torch.utils.data import DataLoader

    loader = ds.loader(batch_size=4, num_workers=0) if batched else DataLoader(ds, batch_size=4)
    for _ in range(2):
        assert sum(len(b["image"]) for b in loader) == N


@pytest.mark.parametrize("identity", [None, "request"], ids=["default", "request"])
@pytest.mark.parametrize("batched", [False, True], ids=["plain", "sampler"])
def test_a_cached_read_costs_one_request_in_request_mode(flat: Path, tmp_path: Path, batched: bool,
                                                         identity: str | None) -> None:
    """``"request"``, and the default over plain HTTP (whose listing carries no version): every read checked."""
    with file_server(flat) as server:
        ds = DicomXrayDataset(server.url + "/", size=24, cache=tmp_path / "c",
                              **({"remote_identity": identity} if identity else {}))  # type: ignore[arg-type]
        _two_epochs(ds, batched)  # epoch 1 fills the cache
        before = len(server.log)
        _two_epochs(ds, batched)  # every read a cache hit
        objects = [r for r in server.log[before:] if r[1].endswith(".dcm")]
    assert {r[0] for r in objects} == {"HEAD"}  # no GET: every read a hit, checked by one HEAD
    heads = sorted(r[1] for r in objects)
    if batched:  # each pass's end reads ahead into the next one (a few HEADs more), and the first window's read-ahead
        # threads may still be making the second window's first HEADs when it is counted (a few on either side)
        assert 2 * N - 4 <= len(heads) <= 2 * N + 4 and set(heads) == {f"/{i}.dcm" for i in range(N)}, heads
    else:
        assert heads == sorted([f"/{i}.dcm" for i in range(N)] * 2), heads


@pytest.mark.parametrize("batched", [False, True], ids=["plain", "sampler"])
def test_a_cached_read_costs_no_request_in_listing_mode(flat: Path, tmp_path: Path, batched: bool) -> None:
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    from remote_servers import make_bucket, moto_server, s3_options, upload

    with moto_server() as endpoint:
        make_bucket(endpoint, "batches")
        upload(endpoint, flat, "batches/flat")
        so = s3_options(endpoint)
        ds = DicomXrayDataset("s3://batches/flat", size=24, cache=tmp_path / "c", storage_options=so,
                              remote_identity="listing")
        _two_epochs(ds, batched)
        from dicomxray.io import remote  # the one function a cached read's identity request goes through

        calls: list[str] = []
        original = remote.head_url
        remote.head_url = lambda url, *a, **k: calls.append(url) or original(url, *a, **k)  # type: ignore[assignment]
        hits, misses = ds.cache.stats.hits, ds.cache.stats.misses
        try:
            _two_epochs(ds, batched)
        finally:
            remote.head_url = original  # type: ignore[assignment]
    assert calls == []
    # and every read was a hit (a listed identity the GET disagreed with would make each read an unstored miss)
    assert ds.cache.stats.misses == misses and ds.cache.stats.hits - hits >= 2 * N


def test_a_batch_error_names_the_url(flat: Path) -> None:
    with file_server(flat) as server:
        ds = DicomXrayDataset(server.url + "/", size=24)
        (flat / "2.dcm").unlink()
        with pytest.raises(SourceFileNotFoundError, match="2.dcm"):
            ds.__getitems__([0, 1, 2, 3])
        server.fail("/5.dcm", *["403"] * 10)
        with pytest.raises(RemoteSourceError, match="5.dcm"):
            ds.__getitems__([4, 5])


def test_a_batch_pays_the_latency_once(flat: Path) -> None:
    with file_server(flat, delay=0.2) as server:
        ds = DicomXrayDataset(server.url + "/", size=24)
        t0 = time.perf_counter()
        batch = ds.__getitems__(list(range(N)))
        elapsed = time.perf_counter() - t0
    assert [s["meta"]["index"] for s in batch] == list(range(N))
    assert elapsed < 0.2 * N * 0.75, elapsed  # one at a time would take N x 0.2 s; at once about 0.2 s


def test_the_default_trusts_only_listed_entries_with_a_version_token(tmp_path: Path) -> None:
    from dicomxray.data.steps import FileList, listing_of
    from dicomxray.io.identity import FileIdentity

    tagged = FileIdentity("s3://b/p/a.dcm", 10, 10**9, 0, 0, etag='"abc"')
    untagged = FileIdentity("s3://b/p/b.dcm", 10, 10**9, 0, 0)  # size and Last-Modified only
    weak = FileIdentity("s3://b/p/c.dcm", 10, 10**9, 0, 0, etag='W/"abc"')  # a weak HTTP validator
    assert tagged.versioned and not untagged.versioned and not weak.versioned
    found = FileList("s3://b/p", [tagged.path, untagged.path, weak.path],
                     {i.path: i for i in (tagged, untagged, weak)})
    auto, listing = listing_of(found, "auto", None), listing_of(found, "listing", None)
    assert auto is not None and dict(auto) == {tagged.path: tagged}  # the others: a request per read
    assert listing is not None and len(listing) == 3
    assert listing_of(found, "request", None) is None
    unversioned = FileList("s3://b/p", [untagged.path], {untagged.path: untagged})
    assert listing_of(unversioned, "auto", None) is None  # nothing to trust: every read checked
    with pytest.raises(ValueError, match="remote_identity must be 'auto', 'request' or 'listing'"):
        DicomXrayDataset(tmp_path, remote_identity="sometimes")  # type: ignore[arg-type]


def test_a_failed_pass_listing_is_raised_and_the_next_pass_lists_again(flat: Path, tmp_path: Path) -> None:
    import copy

    from torch.utils.data import DataLoader

    from dicomxray import RemoteAccessError

    with file_server(flat) as server:
        ds = DicomXrayDataset(server.url + "/", size=24, cache=tmp_path / "c", remote_identity="listing")
        loader = DataLoader(ds, batch_size=4)
        assert sum(len(b["image"]) for b in loader) == N  # the listing the data set was built from
        server.fail("/", "403")  # refused once (never retried)
        with pytest.raises(RemoteAccessError, match=server.url):
            next(iter(loader))  # this pass's listing, refused: raised where it is waited for
        assert sum(len(b["image"]) for b in loader) == N  # the next pass lists again
        twin = copy.deepcopy(ds)  # a copy in the same process owns a listing folder of its own
        assert twin._listing._shared != ds._listing._shared
        assert sum(len(b["image"]) for b in DataLoader(twin, batch_size=4)) == N


def test_immutable_identities_are_never_waited_for_in_a_fresh_worker() -> None:
    """DICOMweb identities (SOP Instance UIDs) name bytes that never change: a process reading a pass keeps them
    without waiting for (or making) a new listing, even with the server unreachable; a bucket's ETags do not."""
    from dicomxray.data.epochs import EpochListing
    from dicomxray.io.identity import IMMUTABLE_PREFIX, FileIdentity

    root = "dicomweb+http://127.0.0.1:9/dicom-web"  # nothing listens on the discard port
    url = f"{root}/studies/1/series/2/instances/3"
    idents = {url: FileIdentity(url, -1, 0, 0, 0, etag=f"{IMMUTABLE_PREFIX}3")}
    assert idents[url].immutable and not FileIdentity("s3://b/k", 1, 0, 0, 0, etag='"abc"').immutable
    listing = EpochListing(root, None, idents, versioned_only=True)
    listing._pid = listing._owner = -1  # as a freshly forked worker sees it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a relisting attempt would warn that the server does not answer
        listing.renew()
    assert dict(listing) == idents
