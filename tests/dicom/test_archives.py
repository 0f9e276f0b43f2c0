"""Real archives (issue 11): extensionless trees everywhere, never stale, readable by the team, a CLI that
refuses bad arguments before work starts, and from_index selection."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader

from dicomxray import DicomXrayDataset, XrayCache, export_folder, pipeline_config, read_xray
from dicomxray.cli import main
from dicomxray.testing import chest_phantom, write_dicom


@pytest.fixture
def pacs(tmp_path: Path) -> Path:
    """A PACS-style export: no extensions, UID and IM names, a non-DICOM file beside them."""
    root = tmp_path / "pacs"
    for i, name in enumerate(["IM000001", "IM000002", "1.2.840.113619.2.55.3.1"]):
        write_dicom(root / "STUDY1" / name, chest_phantom(60, 80, bits=12, seed=i), bits_stored=12)
    (root / "STUDY1" / "README.txt").write_text("not an image")
    return root


def test_dataset_and_export_find_extensionless_files(pacs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = DicomXrayDataset(pacs, size=32)
    assert sorted(Path(f).name for f in ds.files) == ["1.2.840.113619.2.55.3.1", "IM000001", "IM000002"]
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["image"].shape == (3, 1, 32, 32)
    assert main(["export", str(pacs), str(tmp_path / "png"), "--size", "32", "--quiet", "--workers", "1"]) == 0
    assert "3 written" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "png").rglob("*.png")) == [
        "1.2.840.113619.2.55.3.1.png", "IM000001.png", "IM000002.png"]


def _stale_setup(tmp_path: Path) -> tuple[Path, XrayCache, np.ndarray, np.ndarray]:
    uids = dict(sop_uid="1.2.826.0.1.1", study_uid="1.2.826.0.1.2", series_uid="1.2.826.0.1.3")  # same lengths
    src = write_dicom(tmp_path / "a.dcm", chest_phantom(64, 64, bits=12, seed=1), bits_stored=12, **uids)
    other = write_dicom(tmp_path / "other.dcm", chest_phantom(64, 64, bits=12, seed=2), bits_stored=12, **uids)
    assert src.stat().st_size == other.stat().st_size
    cache = XrayCache(tmp_path / "cache")
    first = cache.load(src, pipeline_config(size=32)).pixels.copy()
    return src, cache, first, read_xray(other, 32)


def test_cp_p_replacement_in_place_is_not_served_stale(tmp_path: Path) -> None:
    src, cache, first, expected = _stale_setup(tmp_path)
    before = src.stat()
    subprocess.run(["cp", "-p", str(tmp_path / "other.dcm"), str(src)], check=True)  # same size, mtime copied
    os.utime(src, ns=(before.st_atime_ns, before.st_mtime_ns))  # and even the old mtime
    after = src.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    got = XrayCache(tmp_path / "cache").load(src, pipeline_config(size=32)).pixels
    assert np.array_equal(got, expected) and not np.array_equal(got, first)


def test_replacement_by_rename_with_old_mtime_is_not_served_stale(tmp_path: Path) -> None:
    src, cache, first, expected = _stale_setup(tmp_path)
    before = src.stat()
    tmp = tmp_path / "incoming.dcm"
    shutil.copy2(tmp_path / "other.dcm", tmp)  # rsync -t / tar -x style: new inode, old times
    os.utime(tmp, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(tmp, src)
    got = XrayCache(tmp_path / "cache").load(src, pipeline_config(size=32)).pixels
    assert np.array_equal(got, expected) and not np.array_equal(got, first)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_exports_and_cache_entries_follow_the_umask(pacs: Path, tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        export_folder(pacs, tmp_path / "png", config=pipeline_config(size=32), progress=False)
        cache = XrayCache(tmp_path / "cache")
        cache.load(next(pacs.rglob("IM000001")), pipeline_config(size=32))
    finally:
        os.umask(old)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "png").rglob("*.png")}
    modes |= {stat.S_IMODE(p.stat().st_mode) for p in cache.entries()}
    assert modes == {mode}


@pytest.mark.parametrize("argv,message", [
    pytest.param(["export", "SRC", "OUT", "--size", "0"], "--size", id="size-0"),
    pytest.param(["export", "SRC", "OUT", "--size", "100000"], "--size", id="size-huge"),
    pytest.param(["export", "SRC", "OUT", "--workers", "-1"], "--workers", id="workers-negative"),
    pytest.param(["export", "SRC", "OUT", "--dtype", "uint16", "--format", "jpg"], "--dtype", id="uint16-jpg"),
    pytest.param(["export", "SRC", "OUT", "--dtype", "float32"], "--dtype", id="float32-export"),
    pytest.param(["cache", "build", "SRC", "--cache-dir", "C", "--shard", "abc"], "--shard", id="shard-abc"),
    pytest.param(["cache", "build", "SRC", "--cache-dir", "C", "--shard", "3/2"], "--shard", id="shard-3/2"),
    pytest.param(["cache", "build", "SRC", "--cache-dir", "C", "--shard", "1/0"], "--shard", id="shard-1/0"),
    pytest.param(["cache", "build", "SRC", "--cache-dir", "C", "--shard", "0/2"], "--shard", id="shard-0/2"),
    pytest.param(["cache", "verify", "--cache-dir", "/does-not-exist"], "--cache-dir", id="verify-missing-dir"),
    pytest.param(["cache", "prune", "--cache-dir", "/does-not-exist"], "--cache-dir", id="prune-missing-dir"),
    pytest.param(["cache", "build", "--cache-dir", "C"], "ROOT", id="build-without-root"),
])
def test_bad_arguments_are_usage_errors_before_any_work(
    argv: list[str], message: str, pacs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(pacs) if a == "SRC" else str(tmp_path / a) if a in ("OUT", "C") else a for a in argv]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "OUT").exists() and not (tmp_path / "C").exists()  # nothing was started


def test_info_on_a_directory_and_into_a_closed_pipe_ends_without_a_traceback(pacs: Path) -> None:
    exe = [sys.executable, "-m", "dicomxray"]
    r = subprocess.run([*exe, "info", str(pacs)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "is a directory" in r.stdout + r.stderr and "Traceback" not in r.stderr
    files = [str(p) for p in sorted(pacs.rglob("IM*"))] * 20
    proc = subprocess.Popen([*exe, "info", *files], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # `| head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and "Traceback" not in err and "BrokenPipe" not in err


def test_every_option_has_help_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    from dicomxray.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) >= {"export", "info", "doctor", "index", "cache", "preview", "bench", "demo"}
    for name, sub in commands.items():
        for action in sub._actions:
            if not action.option_strings or action.help == "==SUPPRESS==" or "-h" in action.option_strings:
                continue
            assert action.help and len(action.help) > 10, (name, action.option_strings)
            if action.default not in (None, False) and not isinstance(action.default, bool):
                shown = sub._get_formatter()._get_help_string(action)  # what --help prints for this option
                assert "%(default)" in shown or "default" in shown.lower(), (name, action.option_strings)


def test_from_index_keeps_frontal_views(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    root = tmp_path / "archive"
    views = {"a": "PA", "b": "LL", "c": "AP", "d": "LATERAL"}
    for i, (name, view) in enumerate(views.items()):
        write_dicom(root / name, chest_phantom(40, 40, bits=12, seed=i), bits_stored=12, extra={"ViewPosition": view})
    assert main(["index", str(root), "-o", str(tmp_path / "index.parquet"), "--quiet"]) == 0
    ds = DicomXrayDataset.from_index(tmp_path / "index.parquet", "ViewPosition in ['PA', 'AP']", size=32)
    assert sorted(Path(f).name for f in ds.files) == ["a", "c"]
    assert ds[0]["image"].shape == (1, 32, 32)
    ds2 = DicomXrayDataset.from_index(tmp_path / "index.parquet", lambda row: row["ViewPosition"] == "LL", size=32)
    assert [Path(f).name for f in ds2.files] == ["b"]


@pytest.mark.parametrize("out", ["DIR", "index.txt"])
def test_index_refuses_an_output_it_cannot_write(out: str, pacs: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path if out == "DIR" else tmp_path / out
    with pytest.raises(SystemExit) as info:
        main(["index", str(pacs), "-o", str(target), "--quiet"])
    assert info.value.code == 2 and "-o" in capsys.readouterr().err


def test_export_is_redone_when_an_option_changes_and_refuses_clashing_names(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    src = tmp_path / "src"
    write_dicom(src / "a.dcm", chest_phantom(60, 80, bits=12, seed=1), bits_stored=12)
    assert main(["export", str(src), str(tmp_path / "out"), "--size", "64", "--quiet", "--workers", "1"]) == 0
    assert main(["export", str(src), str(tmp_path / "out"), "--size", "64", "--quiet", "--workers", "1"]) == 0
    assert "0 written, 1 up to date" in capsys.readouterr().out
    assert main(["export", str(src), str(tmp_path / "out"), "--size", "128", "--quiet", "--workers", "1"]) == 0
    assert "1 written" in capsys.readouterr().out
    assert Image.open(tmp_path / "out" / "a.png").size == (128, 128)
    write_dicom(src / "a", chest_phantom(60, 80, bits=12, seed=2), bits_stored=12)  # also becomes a.png
    assert main(["export", str(src), str(tmp_path / "o2"), "--size", "32", "--quiet", "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert "0 written" in captured.out and "claimed by 2 sources" in captured.err
    assert not (tmp_path / "o2" / "a.png").exists()


def test_cache_build_into_an_unwritable_place_fails(pacs: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    with pytest.warns(UserWarning):
        rc = main(["cache", "build", str(pacs), "--cache-dir", str(blocker), "--size", "32", "--quiet"])
    assert rc == 1 and "0 written" in capsys.readouterr().out
