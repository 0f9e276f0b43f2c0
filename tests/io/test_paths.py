"""Outputs stay inside their destination: a name derived from a source never leaves it (locally and over S3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dicomxray import export_folder
from dicomxray.errors import OutputPathError
from dicomxray.io.paths import safe_output_path
from dicomxray.testing import chest_phantom, write_dicom


@pytest.mark.parametrize(("name", "expected"), [
    ("a/b/c.png", "a/b/c.png"), ("/tmp/x/ESCAPE.png", "tmp/x/ESCAPE.png"), ("a//b/./c.png", "a/b/c.png"),
    ("x.png", "x.png"),
])
def test_names_are_normalised_under_the_destination(tmp_path: Path, name: str, expected: str) -> None:
    assert safe_output_path(tmp_path / "out", name) == tmp_path / "out" / expected


@pytest.mark.parametrize("name", ["../x.png", "a/../../x.png", "..", "", "/", "a\0b.png",
                                  *(["C:/x.png", "C:x.png"] if os.name == "nt" else [])])
def test_names_leaving_the_destination_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(OutputPathError, match="would leave the destination"):
        safe_output_path(tmp_path / "out", name)


@pytest.mark.skipif(os.name == "nt", reason="a drive on Windows")
@pytest.mark.parametrize("name", ["C:scan.png", "C:/x.png", "a/b:c.png"])
def test_a_colon_is_part_of_a_posix_name(tmp_path: Path, name: str) -> None:
    assert safe_output_path(tmp_path / "out", name) == (tmp_path / "out").joinpath(*name.split("/"))


def test_export_writes_a_posix_name_with_a_colon(tmp_path: Path) -> None:
    write_dicom(tmp_path / "src" / "C:scan.dcm", chest_phantom(32, 32, bits=12), bits_stored=12)
    results = export_folder(tmp_path / "src", tmp_path / "dst", workers=0, progress=False)
    assert [r.status for r in results] == ["written"], results
    assert (tmp_path / "dst" / "C:scan.png").exists()


def test_a_tilde_in_an_output_path_is_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    write_dicom(tmp_path / "src" / "a.dcm", chest_phantom(32, 32, bits=12), bits_stored=12)
    results = export_folder(tmp_path / "src", "~/png", workers=0, progress=False)
    assert [r.status for r in results] == ["written"], results
    assert (tmp_path / "home" / "png" / "a.png").exists() and not (tmp_path / "~").exists()
    assert safe_output_path("~/png", "a.png") == tmp_path / "home" / "png" / "a.png"


def test_outputs_that_clash_are_named_in_pairs(tmp_path: Path) -> None:
    from dicomxray.io.paths import output_clashes

    out = tmp_path / "out"
    targets = {"x.dcm": out / "x.dcm", "x.dcm/y.dcm": out / "x.dcm" / "y.dcm", "z": out / "z", "z2": out / "z",
               "ok": out / "ok"}
    assert output_clashes(targets) == [("x.dcm", "x.dcm/y.dcm"), ("z", "z2")]


def test_a_symlink_in_the_destination_is_not_followed_out(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "out" / "sub")
    with pytest.raises(OutputPathError, match="sub/x.png"):
        safe_output_path(tmp_path / "out", "sub/x.png")


def test_export_refuses_to_write_through_a_symlink_leaving_the_destination(tmp_path: Path) -> None:
    write_dicom(tmp_path / "src" / "sub" / "a.dcm", chest_phantom(32, 32, bits=12), bits_stored=12)
    write_dicom(tmp_path / "src" / "b.dcm", chest_phantom(32, 32, bits=12, seed=1), bits_stored=12)
    (tmp_path / "dst").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "dst" / "sub")
    results = export_folder(tmp_path / "src", tmp_path / "dst", workers=0, progress=False)
    assert not list((tmp_path / "elsewhere").iterdir())
    status = {Path(r.source).name: (r.status, r.error) for r in results}
    assert status["b.dcm"][0] == "written" and status["a.dcm"][0] == "failed"
    assert "would leave the destination" in status["a.dcm"][1]


def test_an_s3_key_with_a_double_slash_stays_in_the_destination(tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    import s3fs

    from remote_servers import make_bucket, moto_server, s3_options

    src = write_dicom(tmp_path / "a.dcm", chest_phantom(32, 32, bits=12), bits_stored=12)
    escape = tmp_path / "escape" / "ESCAPE.dcm"  # the key root//<absolute path> names it
    with moto_server() as endpoint:
        make_bucket(endpoint, "data")
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_options(endpoint))
        fs.put_file(str(src), "data/root/ok.dcm")
        fs.put_file(str(src), f"data/root/{escape}")  # data/root//tmp/.../ESCAPE.dcm
        assert f"data/root//{str(escape).lstrip('/')}" in fs.find("data/root")
        results = export_folder("s3://data/root", tmp_path / "dst", workers=0, progress=False,
                                storage_options=s3_options(endpoint))
    assert not escape.with_suffix(".png").exists()
    written = sorted(p.relative_to(tmp_path / "dst").as_posix() for p in (tmp_path / "dst").rglob("*.png"))
    assert written == sorted(["ok.png", f"{escape.parent.as_posix().lstrip('/')}/ESCAPE.png"]), (written, results)


def test_an_output_url_is_refused_before_any_work(tmp_path: Path) -> None:
    write_dicom(tmp_path / "src" / "a.dcm", chest_phantom(32, 32, bits=12), bits_stored=12)
    with pytest.raises(OutputPathError, match="outputs are local files"):
        export_folder(tmp_path / "src", "s3://bucket/png", workers=0, progress=False)


def test_export_names_both_sources_when_one_output_would_be_the_others_folder(tmp_path: Path) -> None:
    write_dicom(tmp_path / "src" / "x.dcm", chest_phantom(32, 32, bits=12), bits_stored=12)
    write_dicom(tmp_path / "src" / "x.png" / "y.dcm", chest_phantom(32, 32, bits=12, seed=1), bits_stored=12)
    results = export_folder(tmp_path / "src", tmp_path / "dst", workers=0, progress=False)
    assert [r.status for r in results] == ["failed", "failed"], results
    for r, other in zip(results, ("y.dcm", "x.dcm"), strict=True):
        assert other in r.error and "rename one" in r.error
    assert not (tmp_path / "dst").exists() or not list((tmp_path / "dst").rglob("*.png"))
