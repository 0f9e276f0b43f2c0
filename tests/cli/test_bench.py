"""``dicomxray bench s3://...``: the objects it copies stay in its folder, through the one output-path check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicomxray.cli import main
from dicomxray.testing import chest_phantom, write_dicom


@pytest.fixture
def s3(tmp_path: Path):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    import s3fs

    from remote_servers import make_bucket, moto_server, s3_options

    src = write_dicom(tmp_path / "a.dcm", chest_phantom(32, 32, bits=12), bits_stored=12)
    with moto_server() as endpoint:
        make_bucket(endpoint, "bench")
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_options(endpoint))

        def put(*keys: str) -> list[str]:
            for key in keys:
                fs.put_file(str(src), f"bench/{key}")
            return ["--storage-options", json.dumps(s3_options(endpoint))]

        yield put


def test_an_object_key_naming_an_absolute_path_stays_in_the_bench_folder(tmp_path, s3, capsys):
    escape = tmp_path / "escape" / "abs.dcm"
    options = s3("data/ok.dcm", f"data/{escape}")  # the key data//<tmp>/escape/abs.dcm
    out = tmp_path / "bench.json"
    rc = main(["bench", "s3://bench/data", "--size", "32", "--repeat", "1", "--out", str(out), *options])
    assert rc == 0, capsys.readouterr()
    assert not escape.exists()
    assert json.loads(out.read_text())["files"] == 2


def test_clashing_object_names_are_an_error_naming_both(tmp_path, s3, capsys):
    options = s3("data/x.dcm", "data/x.dcm/y.dcm")
    rc = main(["bench", "s3://bench/data", "--size", "32", "--repeat", "1", *options])
    err = capsys.readouterr().err
    assert rc == 1
    assert "s3://bench/data/x.dcm and s3://bench/data/x.dcm/y.dcm" in err and "Traceback" not in err, err


def test_a_local_bench_writes_its_figures_under_a_tilde(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    write_dicom(tmp_path / "in" / "a.dcm", chest_phantom(32, 32, bits=12), bits_stored=12)
    assert main(["bench", str(tmp_path / "in"), "--size", "16", "--repeat", "1", "--out", "~/b.json"]) == 0
    assert json.loads((tmp_path / "home" / "b.json").read_text())["files"] == 1
