from __future__ import annotations

import json

import numpy as np
from PIL import Image
from pydicom import uid

from dicomxray import read_xray
from dicomxray.cli import main
from dicomxray.pixels.decode import SYNTAX_NAMES
from dicomxray.testing import chest_phantom, make_siim_dataset, write_dicom


def test_export_mirrors_the_tree_and_skips_up_to_date(tmp_path, capsys):
    make_siim_dataset(tmp_path / "siim", studies=3, size=(200, 240))
    src, dst = tmp_path / "siim" / "train", tmp_path / "png"
    assert main(["export", str(src), str(dst), "--size", "64", "--workers", "1", "--quiet"]) == 0
    outs = sorted(dst.rglob("*.png"))
    dcms = sorted(src.rglob("*.dcm"))
    assert [o.relative_to(dst).with_suffix("") for o in outs] == [d.relative_to(src).with_suffix("") for d in dcms]
    assert np.array_equal(np.asarray(Image.open(outs[0])), read_xray(dcms[0], 64))
    assert "3 written" in capsys.readouterr().out
    assert main(["export", str(src), str(dst), "--size", "64", "--workers", "2", "--quiet"]) == 0
    assert "3 up to date" in capsys.readouterr().out


def test_export_reports_bad_files_and_goes_on(tmp_path, capsys):
    write_dicom(tmp_path / "in" / "good.dcm", chest_phantom(64, 64, bits=12), bits_stored=12)
    (tmp_path / "in" / "bad.dcm").write_bytes(b"garbage" * 100)
    rc = main(["export", str(tmp_path / "in"), str(tmp_path / "out"), "--quiet", "--workers", "1"])
    captured = capsys.readouterr()
    assert rc == 1 and "bad.dcm" in captured.err and (tmp_path / "out" / "good.png").exists()
    assert not (tmp_path / "out" / "bad.png").exists()
    assert main(["export", str(tmp_path / "in"), str(tmp_path / "o2"), "--quiet", "--on-error", "skip"]) == 0


def test_export_16bit_png(tmp_path):
    write_dicom(tmp_path / "in" / "a.dcm", chest_phantom(64, 64, bits=12), bits_stored=12)
    assert main(["export", str(tmp_path / "in"), str(tmp_path / "out"), "--dtype", "uint16", "--quiet"]) == 0
    arr = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    assert arr.dtype == np.uint16 and arr.max() == 65535


def test_info_hides_patient_data_unless_asked(tmp_path, capsys):
    path = write_dicom(tmp_path / "a.dcm", chest_phantom(64, 64, bits=12), bits_stored=12, syntax=uid.JPEGLSLossless,
                       patient_id="PID-12345", photometric="MONOCHROME1",
                       extra={"PatientName": "Doe^Jane", "PatientBirthDate": "19800101", "AccessionNumber": "ACC999",
                              "InstitutionName": "General Hospital"})
    assert main(["info", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data["pipeline"]["decoder"] == "imagecodecs" and data["pipeline"]["inverted"] is True
    for secret in ("PID-12345", "Doe", "19800101", "ACC999", "General Hospital"):
        assert secret not in out
    assert main(["info", str(path), "--json", "--show-phi"]) == 0
    assert "PID-12345" in capsys.readouterr().out


def test_info_on_a_bad_file_names_it(tmp_path, capsys):
    p = tmp_path / "x.dcm"
    p.write_bytes(b"\0" * 10)
    assert main(["info", str(p)]) == 1
    assert "x.dcm" in capsys.readouterr().out


def test_doctor_lists_every_syntax(capsys):
    assert main(["doctor", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(SYNTAX_NAMES) == 19 and all(r["backend"] for r in rows)


def test_cache_build_shards_verify_prune(tmp_path, capsys):
    make_siim_dataset(tmp_path / "siim", studies=4, size=(120, 160))
    root, cache = str(tmp_path / "siim" / "train"), str(tmp_path / "cache")
    assert main(["cache", "build", root, "--cache-dir", cache, "--size", "32", "--shard", "1/2", "--quiet"]) == 0
    assert "2 written" in capsys.readouterr().out
    assert main(["cache", "build", root, "--cache-dir", cache, "--size", "32", "--shard", "2/2", "--quiet"]) == 0
    assert main(["cache", "build", root, "--cache-dir", cache, "--size", "32", "--quiet"]) == 0
    assert "0 written, 4 already cached" in capsys.readouterr().out
    assert main(["cache", "verify", "--cache-dir", cache]) == 0
    assert "4 ok" in capsys.readouterr().out
    assert main(["cache", "prune", "--cache-dir", cache]) == 0
    assert "0 removed, 4 kept" in capsys.readouterr().out


def test_preview_writes_a_grid(tmp_path):
    make_siim_dataset(tmp_path / "siim", studies=4, size=(120, 160))
    out = tmp_path / "grid.png"
    assert main(["preview", str(tmp_path / "siim"), "--size", "64", "--out", str(out), "--augment"]) == 0
    im = Image.open(out)
    assert im.size == (4 * 256, 256)
    assert np.asarray(im)[..., 2].max() > 200  # box outlines are drawn


def test_module_entry_point_runs():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "dicomxray", "--version"], capture_output=True, text=True, check=True)
    assert r.stdout.startswith("dicomxray ")
