"""DICOMweb roots (issue 27): listed by QIDO-RS, read by WADO-RS, against a real Orthanc with its DICOMweb plugin
(Debian's ``orthanc`` and ``orthanc-dicomweb``; the tests skip where they are not installed).  No client is mocked;
a few unit tests drive the parsing and paging rules without a server."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

from pydicom import uid  # noqa: E402

from dicomxray import (  # noqa: E402
    DicomXrayDataset,
    RemoteAccessError,
    RemoteSourceError,
    SourceFileNotFoundError,
    read_xray,
)
from dicomxray.dicom.sources import find_sources  # noqa: E402
from dicomxray.errors import DicomXrayWarning, LoaderWarning  # noqa: E402
from dicomxray.index import build_index, read_index  # noqa: E402
from dicomxray.io import dicomweb  # noqa: E402
from dicomxray.io.source import file_identity  # noqa: E402
from dicomxray.jobs.tasks import export_folder  # noqa: E402
from dicomxray.testing import chest_phantom, write_dicom  # noqa: E402
from remote_servers import ORTHANC_PASSWORD, file_server, free_port, orthanc_paths, orthanc_server  # noqa: E402

needs_orthanc = pytest.mark.skipif(orthanc_paths() is None, reason="Orthanc and its DICOMweb plugin not installed")

#: (study, series, modality, transfer syntax) of each synthetic instance: every series holds one modality.
LAYOUT = [("A", "A1", "CR", uid.ExplicitVRLittleEndian), ("A", "A1", "CR", uid.RLELossless),
          ("A", "A2", "DX", uid.JPEGLSLossless), ("B", "B1", "CR", uid.ExplicitVRLittleEndian),
          ("B", "B1", "CR", uid.JPEGLosslessSV1)]


def _films(folder: Path, layout: list[tuple[str, str, str, str]], seed: int = 0) -> dict[str, Path]:
    """Synthetic films named by their SOP Instance UID: UID -> path."""
    studies = {s: uid.generate_uid() for s in {row[0] for row in layout}}
    series = {s: uid.generate_uid() for s in {row[1] for row in layout}}
    out = {}
    for i, (study, ser, modality, syntax) in enumerate(layout):
        sop = uid.generate_uid()
        out[sop] = write_dicom(folder / f"{sop}.dcm", chest_phantom(70, 60, bits=12, seed=seed + i), syntax=syntax,
                               bits_stored=12, study_uid=studies[study], series_uid=series[ser], sop_uid=sop,
                               extra={"Modality": modality})
    return out


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(server, local films by SOP UID) of an Orthanc holding :data:`LAYOUT`."""
    if orthanc_paths() is None:
        pytest.skip("Orthanc and its DICOMweb plugin not installed")
    folder = tmp_path_factory.mktemp("orthanc")
    films = _films(folder / "films", LAYOUT)
    with orthanc_server(folder / "server") as server:
        server.upload(list(films.values()))
        yield server, films


def _requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every DICOMweb request this process makes from now on (the URL each names)."""
    seen: list[str] = []
    real = dicomweb._get

    def counted(name: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(dicomweb, "_get", counted)
    return seen


# ----------------------------------------------------------------------------- without a server
def test_urls_are_taken_apart() -> None:
    where = dicomweb.parse("dicomweb+https://h.example:8443/v1/dicomWeb/studies/1.2/series/1.3?Modality=CR")
    assert where.service == "https://h.example:8443/v1/dicomWeb"
    assert (where.study, where.series, where.instance) == ("1.2", "1.3", None)
    assert where.query == (("Modality", "CR"),)
    assert where.http(instances=True) == "https://h.example:8443/v1/dicomWeb/studies/1.2/series/1.3/instances"
    assert where.instance_url("1", "2", "3") == "dicomweb+https://h.example:8443/v1/dicomWeb/studies/1/series/2/instances/3"
    assert dicomweb.relative_name(where.instance_url("1", "2", "3")) == "1/2/3"
    with pytest.raises(ValueError, match="limit"):
        dicomweb.parse("dicomweb+http://h/x?limit=5")
    ident = dicomweb.instance_identity(where.instance_url("1", "2", "3"))
    assert not ident.weak and ident.token() == dicomweb.instance_identity(where.instance_url("1", "2", "3")).token()


def test_paging_goes_on_past_a_server_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that caps pages at 3 (below the 10 asked) still gives all 8 instances, once each, sorted."""
    uids = [f"1.{n}" for n in (5, 3, 8, 1, 7, 2, 6, 4)]
    asked: list[tuple[int, int]] = []

    def server(name: str, url: str, so: Any, accept: str, params: list[tuple[str, str]]) -> Any:
        p = dict(params)
        limit, offset = int(p["limit"]), int(p["offset"])
        asked.append((limit, offset))
        page = uids[offset:offset + min(limit, 3)]
        items = [{"0020000D": {"Value": ["9"]}, "0020000E": {"Value": ["9.1"]}, "00080018": {"Value": [u]}}
                 for u in page]
        return (200 if items else 204), {}, json.dumps(items).encode() if items else b""

    monkeypatch.setattr(dicomweb, "_get", server)
    listed = dicomweb.list_instances("dicomweb+http://h/dw", page=10)
    assert [u.rpartition("/")[2] for u in listed] == sorted(uids)
    assert asked == [(10, 0), (10, 3), (10, 6)]  # the short third page (2 < 3) ends it


def test_the_first_part_of_a_multipart_answer() -> None:
    body = b"--b1\r\nContent-Type: application/dicom\r\n\r\nDICM-bytes\r\n--b1--\r\n"
    assert dicomweb._first_part(body, 'multipart/related; type="application/dicom"; boundary=b1', "u") == b"DICM-bytes"
    assert dicomweb._first_part(b"raw", "application/dicom", "u") == b"raw"


def test_5xx_and_dropped_connections_are_retried(tmp_path: Path) -> None:
    """A plain HTTP server standing in for DICOMweb (a QIDO answer and one instance as files): a 503 and a
    reset on each resource are retried, then the listing and the read succeed."""
    film = write_dicom(tmp_path / "f.dcm", chest_phantom(40, 30, bits=12, seed=3), bits_stored=12,
                       study_uid="1.9", series_uid="1.9.1", sop_uid="1.9.1.1")
    (tmp_path / "dw" / "studies" / "1.9" / "series" / "1.9.1" / "instances").mkdir(parents=True)
    (tmp_path / "dw" / "studies" / "1.9" / "series" / "1.9.1" / "instances" / "1.9.1.1").write_bytes(film.read_bytes())
    (tmp_path / "dw" / "instances").write_text(json.dumps([{"0020000D": {"Value": ["1.9"]}, "0020000E": {
        "Value": ["1.9.1"]}, "00080018": {"Value": ["1.9.1.1"]}}]))
    with file_server(tmp_path) as server:
        root = f"dicomweb+{server.url}/dw"
        server.fail("/dw/instances", "503", "reset")
        server.fail("/dw/studies/1.9/series/1.9.1/instances/1.9.1.1", "502", "reset")
        [url] = dicomweb.list_instances(root)  # the same answer for every offset: the paging still ends
        assert np.array_equal(read_xray(url, 32), read_xray(film, 32))
        assert len(server.requests("/dw/instances")) == 3 + 1  # two failures, the page, the page again
        assert len(server.requests("/dw/studies/1.9/series/1.9.1/instances/1.9.1.1")) == 3


def test_a_server_that_is_down_is_a_remote_source_error() -> None:
    root = f"dicomweb+http://127.0.0.1:{free_port()}/dicom-web"
    with pytest.raises(RemoteSourceError, match="127.0.0.1"):
        DicomXrayDataset(root, size=32)


# ----------------------------------------------------------------------------- against Orthanc
@needs_orthanc
def test_a_dataset_epoch_equals_the_local_files(orthanc: Any, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    server, films = orthanc
    remote = DicomXrayDataset(server.dicomweb, storage_options=server.storage_options, size=48,
                              cache=tmp_path / "cache", remote_identity="listing")
    local = DicomXrayDataset(films[next(iter(films))].parent, size=48)
    assert sorted(Path(f).name for f in remote.files) == sorted(films)  # names are SOP Instance UIDs
    keys = [dicomweb.relative_name(f) for f in remote.files]
    assert keys == sorted(keys)  # Study/Series/SOP order: every rank lists the same
    by_name = {Path(f).stem: i for i, f in enumerate(local.files)}
    for i, f in enumerate(remote.files):
        assert np.array_equal(remote.load(i).pixels, local.load(by_name[f.rpartition("/")[2]]).pixels)
    seen = _requests(monkeypatch)
    for i in range(len(remote)):  # epoch 2: every read a cache hit, and no request at all
        remote[i]
    assert seen == []


@needs_orthanc
def test_a_query_and_study_series_instance_roots(orthanc: Any) -> None:
    server, films = orthanc
    so = server.storage_options
    everything = find_sources(server.dicomweb, so).files
    dx = find_sources(f"{server.dicomweb}?Modality=DX", so).files
    assert len(everything) == len(LAYOUT) and len(dx) == 1
    assert dicomweb.relative_name(dx[0]).split("/")[1] == dicomweb.parse(dx[0]).series
    study = dicomweb.parse(everything[-1]).study
    in_study = find_sources(f"{server.dicomweb}/studies/{study}", so).files
    assert in_study == [f for f in everything if dicomweb.parse(f).study == study] and 0 < len(in_study) < len(everything)
    series = dicomweb.parse(everything[0])
    in_series = find_sources(f"{server.dicomweb}/studies/{series.study}/series/{series.series}", so).files
    assert in_series == [f for f in everything if dicomweb.parse(f).series == series.series]
    assert dicomweb.list_instances(server.dicomweb, so, page=2) == dicomweb.list_instances(server.dicomweb, so)
    one = everything[2]
    assert np.array_equal(read_xray(one, 40, storage_options=so), read_xray(films[one.rpartition("/")[2]], 40))
    with pytest.raises(SourceFileNotFoundError, match="no instance"):
        find_sources(f"{server.dicomweb}?Modality=MR", so)


@needs_orthanc
def test_export_and_index_over_dicomweb(orthanc: Any, tmp_path: Path) -> None:
    server, films = orthanc
    so = server.storage_options
    results = export_folder(f"{server.dicomweb}?Modality=CR", tmp_path / "png", storage_options=so, progress=False)
    assert {r.status for r in results} == {"written"} and len(results) == 4
    for r in results:
        where = dicomweb.parse(r.source)
        assert Path(r.target) == tmp_path / "png" / where.study / where.series / f"{where.instance}.png"
    salt = b"0123456789abcdef"
    build_index(server.dicomweb, tmp_path / "remote.parquet", storage_options=so, progress=False, workers=1, salt=salt)
    again = build_index(server.dicomweb, tmp_path / "again.parquet", storage_options=so, progress=False, workers=1,
                        salt=salt, previous=tmp_path / "remote.parquet")
    assert (again.read, again.reused) == (0, len(LAYOUT))  # the listing's identities: no instance retrieved again
    build_index(films[next(iter(films))].parent, tmp_path / "local.parquet", progress=False, workers=1)
    remote = read_index(tmp_path / "remote.parquet").set_index("SOPInstanceUID").sort_index()
    local = read_index(tmp_path / "local.parquet").set_index("SOPInstanceUID").sort_index()
    same = ["Modality", "Rows", "Columns", "BitsStored", "TransferSyntaxUID", "decodable", "pixel_data_length",
            "StudyInstanceUID", "SeriesInstanceUID", "error"]
    assert remote[same].fillna("").equals(local[same].fillna(""))
    assert not remote["TransferSyntaxUID"].eq(uid.ExplicitVRLittleEndian).all()  # the stored encodings came


@needs_orthanc
def test_credentials_are_needed_and_never_named(orthanc: Any, tmp_path: Path) -> None:
    server, _ = orthanc
    with pytest.raises(RemoteAccessError) as no_header:
        find_sources(server.dicomweb)
    assert "127.0.0.1" in str(no_header.value)
    wrong = {"headers": {"Authorization": "Bearer tok-that-must-not-leak"}}
    with pytest.raises(RemoteAccessError) as bad:
        find_sources(server.dicomweb, wrong)
    assert "tok-that-must-not-leak" not in str(bad.value)
    calls: list[int] = []

    def fresh() -> dict[str, str]:  # a token renewed before each request
        calls.append(1)
        return {"Authorization": server.auth}

    files = find_sources(server.dicomweb, {"headers": fresh}).files
    assert len(files) == len(LAYOUT) and calls
    with pytest.raises(RemoteAccessError) as export:
        export_folder(server.dicomweb, tmp_path / "x", storage_options=wrong, progress=False)
    assert "tok-that-must-not-leak" not in str(export.value)
    for text in (str(no_header.value), str(bad.value)):
        assert ORTHANC_PASSWORD not in text and server.auth not in text


@needs_orthanc
def test_an_instance_deleted_after_listing(orthanc: Any, tmp_path: Path) -> None:
    server, _ = orthanc
    films = _films(tmp_path / "films", [("C", "C1", "CR", uid.ExplicitVRLittleEndian)] * 3, seed=50)
    server.upload(list(films.values()))
    root = f"{server.dicomweb}/studies/{_study_of(films)}"  # this test's own study
    ds = DicomXrayDataset(root, storage_options=server.storage_options, size=32)
    gone = ds.files[1].rpartition("/")[2]
    server.delete(gone)
    with pytest.raises(SourceFileNotFoundError, match=gone.replace(".", r"\.")):
        ds[1]
    with pytest.raises(SourceFileNotFoundError, match=gone.replace(".", r"\.")):  # the "request" identity
        file_identity(ds.files[1], storage_options=server.storage_options)
    assert file_identity(ds.files[0], storage_options=server.storage_options) == \
        dicomweb.instance_identity(ds.files[0])
    skipping = DicomXrayDataset(root, storage_options=server.storage_options, size=32, on_error="skip",
                                files=[*ds.files])
    with pytest.warns(DicomXrayWarning):
        skipping[1]
    [(path, error)] = skipping.skipped()
    assert path.endswith(gone) and gone in error


def _study_of(films: dict[str, Path]) -> str:
    import pydicom

    return str(pydicom.dcmread(next(iter(films.values())), stop_before_pixels=True).StudyInstanceUID)


@needs_orthanc
def test_a_cached_epoch_runs_with_the_server_stopped(tmp_path: Path) -> None:
    films = _films(tmp_path / "films", LAYOUT[:3], seed=80)
    with orthanc_server(tmp_path / "server") as server:
        server.upload(list(films.values()))
        ds = DicomXrayDataset(server.dicomweb, storage_options=server.storage_options, size=32,
                              cache=tmp_path / "cache", remote_identity="listing")
        first = [ds.load(i).pixels.copy() for i in range(len(ds))]
        server.stop()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds.epoch_ending()  # the next pass's listing, made (in a thread) while the server is down
            ds.start_epoch(2)
            again = [ds.load(i).pixels for i in range(len(ds))]
            ds.epoch_ending()
            ds.start_epoch(3)
        relisted = [w for w in caught if issubclass(w.category, LoaderWarning)]
        assert len(relisted) == 1 and "keeping the last listing (3 instances)" in str(relisted[0].message)
        assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
        with pytest.raises(RemoteSourceError):  # a new dataset over the stopped server
            DicomXrayDataset(server.dicomweb, storage_options=server.storage_options, size=32)
