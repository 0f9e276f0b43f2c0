"""Discovery by content, DICOMDIR, the header index (values, errors, patient hash, incremental runs),
selection, and the CSV fallback.  Every file is written here, into tmp_path."""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomxray.errors import SourceFileNotFoundError
from dicomxray.index import build_index, discover, find_dicoms, read_index, select

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
SECRET = "PAT-SECRET-4711"
STUDY_TAGS = {"StudyDate": "20200101", "StudyTime": "101010", "StudyID": "1", "SeriesNumber": "1",
              "InstanceNumber": "1", "AccessionNumber": "A1"}


def _pixels(seed: int = 0, shape: tuple[int, int] = (24, 20)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4096, shape, dtype=np.uint16)


Writer = Callable[..., Path]


@pytest.fixture
def dcm(write: Callable[..., Path], tmp_path: Path) -> Writer:
    """dcm(path, seed=0, pixels=None, **kwargs): a synthetic DICOM at ``path`` (under tmp_path), through
    conftest's shared writer; random 12-bit pixels unless ``pixels`` is given."""

    def _dcm(path: Path, seed: int = 0, *, pixels: np.ndarray | None = None, **kwargs: object) -> Path:
        if pixels is None:
            pixels = _pixels(seed)
            kwargs.setdefault("bits_stored", 12)
        return Path(write(pixels, name=path.relative_to(tmp_path).as_posix(), **kwargs))

    return _dcm


def _write_bare(dcm: Writer, path: Path, seed: int = 0, *, big_endian: bool = False) -> Path:
    """A data set without preamble and file meta, as old archives hold: implicit VR little endian,
    or explicit VR big endian."""
    source = dcm(path.with_name(path.name + ".tmp.dcm"), seed)
    ds = pydicom.dcmread(source)
    source.unlink()
    ds.preamble = None
    del ds.file_meta
    if big_endian:
        ds.PixelData = np.frombuffer(ds.PixelData, "<u2").astype(">u2").tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pydicom.dcmwrite(path, ds, implicit_vr=not big_endian, little_endian=not big_endian,
                         enforce_file_format=False)
    data = path.read_bytes()
    assert data[:2] == (b"\x00\x08" if big_endian else b"\x08\x00") and data[128:132] != b"DICM"
    return path


def _tree(dcm: Writer, root: Path) -> dict[str, Path]:
    files = {
        "a/IM000001": dcm(root / "a" / "IM000001", 1),
        "a/IM000002": dcm(root / "a" / "IM000002", 2),
        "b/1.2.840.113619.2.55.3.604688": dcm(root / "b" / "1.2.840.113619.2.55.3.604688", 3),
        "c.dcm": dcm(root / "c.dcm", 4),
        "d/old_archive": _write_bare(dcm, root / "d" / "old_archive", 5),
    }
    (root / "notes.txt").write_text("not a DICOM file\n" * 20)
    (root / "a" / "thumb.png").write_bytes(PNG_BYTES)
    (root / "b" / "README").write_bytes(b"\x08\x00 looks like a tag, is not one" + bytes(200))
    (root / ".DS_Store").write_bytes(os.urandom(300))  # hidden: ignored, not counted
    (root / ".hidden").mkdir()
    dcm(root / ".hidden" / "IM9", 9)
    return files


# ---------------------------------------------------------------------------- discovery
def test_discover_finds_files_by_content_and_counts_the_rest(tmp_path: Path, dcm: Writer) -> None:
    files = _tree(dcm, tmp_path)
    found = discover(tmp_path)
    assert found.files == [files[k] for k in sorted(files)]
    assert found.skipped == 3
    assert set(found.skipped_examples) == {"notes.txt", "a/thumb.png", "b/README"}
    assert find_dicoms(tmp_path) == found.files


def test_find_dicoms_says_how_many_files_were_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.png").write_bytes(PNG_BYTES)
    with pytest.raises(SourceFileNotFoundError, match="2 non-DICOM files skipped"):
        find_dicoms(tmp_path)
    assert find_dicoms(tmp_path, allow_empty=True) == []
    with pytest.raises(SourceFileNotFoundError, match="no such file"):
        find_dicoms(tmp_path / "missing")


def test_extension_is_a_fast_path_and_a_single_file_is_checked(tmp_path: Path, dcm: Writer) -> None:
    garbage = tmp_path / "garbage.dcm"
    garbage.write_bytes(b"no DICOM here" * 20)
    assert find_dicoms(tmp_path) == [garbage]  # accepted by its name, without reading (the index reports it)
    with pytest.raises(SourceFileNotFoundError, match="1 non-DICOM file skipped"):
        find_dicoms(tmp_path, extensions=())
    assert discover(tmp_path, extensions=()).skipped == 1
    bare = _write_bare(dcm, tmp_path / "single", 1)
    assert find_dicoms(bare) == [bare]


def _dicomdir(dcm: Writer, tmp_path: Path, n: int = 2) -> tuple[Path, list[Path]]:
    from pydicom.fileset import FileSet

    staging = tmp_path / "staging"
    fs = FileSet()
    for i in range(n):
        fs.add(dcm(staging / f"x{i}.dcm", i, extra=dict(STUDY_TAGS, InstanceNumber=str(i + 1))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fs.write(tmp_path / "cd")
    dicomdir = tmp_path / "cd" / "DICOMDIR"
    ds = pydicom.dcmread(dicomdir)
    refs = [dicomdir.parent.joinpath(*r.ReferencedFileID) for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r]
    return dicomdir, refs


def test_dicomdir_is_an_index_not_an_image(tmp_path: Path, dcm: Writer) -> None:
    dicomdir, refs = _dicomdir(dcm, tmp_path)
    assert len(refs) == 2 and all(p.exists() and p.suffix == "" for p in refs)
    found = discover(tmp_path / "cd")
    assert sorted(found.files) == sorted(refs)
    assert dicomdir not in found.files and found.dicomdirs == (dicomdir,) and found.skipped == 0
    assert sorted(find_dicoms(dicomdir)) == sorted(refs)  # the DICOMDIR itself as root


def test_dicomdir_references_missing_files_and_lower_case_media(tmp_path: Path, dcm: Writer) -> None:
    dicomdir, refs = _dicomdir(dcm, tmp_path)
    refs[0].unlink()
    found = discover(tmp_path / "cd")
    assert found.files == [refs[1]] and found.missing == (refs[0],)
    report = build_index(tmp_path / "cd", tmp_path / "index.csv", workers=0, progress=False)
    assert (report.rows, report.missing, report.skipped) == (1, 1, 0)
    # a CD mounted on Linux may show the upper-case file IDs in lower case
    lower = refs[1].parent / refs[1].name.lower()
    refs[1].rename(lower)
    assert discover(dicomdir).files == [lower]


# ---------------------------------------------------------------------------- the index
@pytest.fixture
def pa() -> object:
    pytest.importorskip("pandas")
    return pytest.importorskip("pyarrow")


def _sequence_item(value: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "SCT", "Chest"
    return item


def _archive(dcm: Writer, root: Path) -> dict[str, Path]:
    """Files in every encoding the walk must handle, and broken ones."""
    files = {
        "explicit.dcm": dcm(root / "explicit.dcm", 1, window=(2048, 4096), extra={"ViewPosition": "PA"}),
        "implicit": dcm(root / "implicit", 2, syntax=uid.ImplicitVRLittleEndian, extra={"ViewPosition": "AP"}),
        "bigendian": dcm(root / "bigendian", 3, syntax=uid.ExplicitVRBigEndian, extra={"ViewPosition": "LL"}),
        "deflated": dcm(root / "deflated", 4, syntax=uid.DeflatedExplicitVRLittleEndian),
        "jpegls": dcm(root / "jpegls", 5, syntax=uid.JPEGLSLossless, extra={"ViewPosition": "PA"}),
        "voilut": dcm(root / "voilut", 6, voi_lut=(0, np.arange(4096, dtype=np.uint16) // 16, 8)),
        "bare": _write_bare(dcm, root / "bare", 7),
        "bare_big_endian": _write_bare(dcm, root / "bare_big_endian", 8, big_endian=True),
        # a one-pixel image: the Pixel Data element ends the file a few bytes after its tag
        "tiny": dcm(root / "tiny", pixels=np.full((1, 1), 7, np.uint8), extra={"ViewPosition": "LL"}),
    }
    # an undefined-length sequence (nested), a private block and an overlay larger than the first read
    path = root / "long_header.dcm"
    dcm(path, 8, extra={"ViewPosition": "AP"})
    ds = pydicom.dcmread(path)
    outer = _sequence_item("T-D3000")
    outer.AnatomicRegionModifierSequence = Sequence([_sequence_item("inner")])
    outer.AnatomicRegionModifierSequence[0].is_undefined_length_sequence_item = True
    ds.AnatomicRegionSequence = Sequence([outer])
    ds["AnatomicRegionSequence"].is_undefined_length = True
    outer.is_undefined_length_sequence_item = True
    outer["AnatomicRegionModifierSequence"].is_undefined_length = True
    block = ds.private_block(0x0029, "ACME 1.0", create=True)
    block.add_new(0x10, "LO", "private text")
    ds.add_new(0x60003000, "OW", bytes(100_000))  # Overlay Data before Pixel Data: never read
    ds.add_new(0x60000010, "US", 400)
    ds.save_as(path)
    files["long_header.dcm"] = path
    # broken files: the index keeps a row with the error
    good = (root / "explicit.dcm").read_bytes()
    (root / "truncated_pixels.dcm").write_bytes(good[: len(good) - 100])
    (root / "truncated_header.dcm").write_bytes(good[:300])
    (root / "garbage.dcm").write_bytes(os.urandom(4000))
    return files


def _by_path(df: object) -> dict[str, dict[str, object]]:
    plain = df.astype(object).where(df.notna(), None)  # type: ignore[attr-defined]
    return {row["path"]: row for row in plain.to_dict("records")}


def test_index_rows_match_pydicom(tmp_path: Path, dcm: Writer, pa: object) -> None:
    root = tmp_path / "archive"
    files = _archive(dcm, root)
    report = build_index(root, tmp_path / "index.parquet", workers=0, progress=False)
    assert (report.rows, report.read, report.reused, report.errors) == (13, 13, 0, 3)
    rows = _by_path(read_index(report.path))
    for rel, path in files.items():
        row, ds = rows[rel], pydicom.dcmread(path, force=True)
        assert row["error_type"] is None, (rel, row["error"])
        for key in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality", "Rows", "Columns",
                    "BitsStored", "PhotometricInterpretation"):
            assert row[key] == ds.get(key), (rel, key)
        assert row["ViewPosition"] == ds.get("ViewPosition"), rel
        assert row["size"] == path.stat().st_size and row["inode"] == path.stat().st_ino
        assert row["decodable"] is True and row["decoder"]
        bare = {"bare": uid.ImplicitVRLittleEndian, "bare_big_endian": uid.ExplicitVRBigEndian}
        assert row["TransferSyntaxUID"] == (ds.file_meta.get("TransferSyntaxUID") or bare[rel])
        offset, length = row["pixel_data_offset"], row["pixel_data_length"]
        data = path.read_bytes()
        if rel == "deflated":
            assert offset == -1 and length == len(ds.PixelData)
        elif rel == "jpegls":
            assert length == -1 and data[offset : offset + 4] == b"\xfe\xff\x00\xe0"
            assert data[offset:].startswith(bytes(ds.PixelData)[:64])
        else:
            assert data[offset : offset + length] == ds.PixelData, rel
    assert rows["explicit.dcm"]["has_window"] is True and rows["implicit"]["has_window"] is False
    assert rows["voilut"]["has_voi_lut"] is True and rows["explicit.dcm"]["has_voi_lut"] is False
    assert rows["long_header.dcm"]["pixel_data_offset"] > 100_000
    assert rows["truncated_pixels.dcm"]["error_type"] == "CorruptPixelDataError"
    assert "truncated" in rows["truncated_pixels.dcm"]["error"]
    assert rows["truncated_header.dcm"]["error_type"] == "NotDicomError"
    assert rows["garbage.dcm"]["error_type"] == "NotDicomError"
    assert all(rows[k]["decodable"] is False and rows[k]["SOPInstanceUID"] is None
               for k in ("truncated_pixels.dcm", "truncated_header.dcm", "garbage.dcm"))


def test_worker_processes_give_the_same_rows(tmp_path: Path, dcm: Writer, pa: object) -> None:
    root = tmp_path / "archive"
    _archive(dcm, root)
    one = build_index(root, tmp_path / "one.parquet", workers=0, progress=False, salt=b"s" * 32)
    two = build_index(root, tmp_path / "two.parquet", workers=2, progress=False, salt=b"s" * 32)
    assert read_index(one.path).equals(read_index(two.path))


def test_patient_hash_groups_patients_without_naming_them(tmp_path: Path, dcm: Writer, pa: object) -> None:
    root = tmp_path / "archive"
    for i, patient in enumerate((SECRET, SECRET, "OTHER-1")):
        dcm(root / f"im{i}.dcm", i, patient_id=patient)
    out = tmp_path / "index.parquet"
    build_index(root, out, workers=0, progress=False)
    rows = _by_path(read_index(out))
    assert rows["im0.dcm"]["patient_hash"] == rows["im1.dcm"]["patient_hash"] != rows["im2.dcm"]["patient_hash"]
    assert "PatientID" not in read_index(out).columns
    blob = out.read_bytes()
    assert SECRET.encode() not in blob and b"Synthetic^Patient" not in blob
    salt_file = tmp_path / "index.parquet.salt"
    assert salt_file.stat().st_mode & 0o777 == 0o600
    salt = bytes.fromhex(salt_file.read_text().strip())
    assert salt.hex().encode() not in blob
    assert rows["im0.dcm"]["patient_hash"] == hmac.new(salt, SECRET.encode(), hashlib.sha256).hexdigest()
    build_index(root, out, workers=0, progress=False, rebuild=True)  # the salt is reused
    assert _by_path(read_index(out))["im0.dcm"]["patient_hash"] == rows["im0.dcm"]["patient_hash"]
    with pytest.warns(UserWarning, match="other settings"):
        report = build_index(root, out, workers=0, progress=False, include_patient=True)
    assert report.read == 3
    assert _by_path(read_index(out))["im0.dcm"]["PatientID"] == SECRET


def test_index_is_written_atomically_with_normal_permissions(tmp_path: Path, dcm: Writer, pa: object) -> None:
    dcm(tmp_path / "archive" / "a.dcm")
    out = tmp_path / "out" / "index.parquet"
    build_index(tmp_path / "archive", out, workers=0, progress=False)
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask
    assert sorted(p.name for p in out.parent.iterdir()) == ["index.parquet", "index.parquet.salt"]


def test_incremental_run_reads_only_new_and_changed_files(tmp_path: Path, dcm: Writer, pa: object) -> None:
    root = tmp_path / "archive"
    for i in range(4):
        dcm(root / f"im{i}.dcm", i)
    out = tmp_path / "index.parquet"
    first = build_index(root, out, workers=0, progress=False)
    assert (first.read, first.reused) == (4, 0)
    before = _by_path(read_index(out))

    replaced = root / "im1.dcm"
    tmp = dcm(root / "tmp_replacement", 11)
    os.replace(tmp, replaced)  # a new file under the old name
    dcm(root / "im9.dcm", 9)  # the archive grew
    (root / "im3.dcm").unlink()  # and lost one
    second = build_index(root, out, workers=0, progress=False)
    assert (second.read, second.reused, second.rows) == (2, 2, 4)
    after = _by_path(read_index(out))
    assert after["im0.dcm"] == before["im0.dcm"] and after["im2.dcm"] == before["im2.dcm"]
    assert after["im1.dcm"]["SOPInstanceUID"] == pydicom.dcmread(replaced).SOPInstanceUID != \
        before["im1.dcm"]["SOPInstanceUID"]
    assert "im9.dcm" in after and "im3.dcm" not in after
    assert build_index(root, out, workers=0, progress=False).read == 0


def test_error_rows_are_read_again(tmp_path: Path, dcm: Writer, pa: object) -> None:
    root = tmp_path / "archive"
    dcm(root / "ok.dcm")
    (root / "bad.dcm").write_bytes(b"nothing" * 100)
    out = tmp_path / "index.parquet"
    assert build_index(root, out, workers=0, progress=False).errors == 1
    again = build_index(root, out, workers=0, progress=False)
    assert (again.read, again.reused, again.errors) == (1, 1, 1)


# ---------------------------------------------------------------------------- selection
def test_select_with_a_query_string_and_a_callable(tmp_path: Path, dcm: Writer, pa: object) -> None:
    root = tmp_path / "archive"
    _archive(dcm, root)
    out = build_index(root, tmp_path / "index.parquet", workers=0, progress=False).path
    picked = select(out, "ViewPosition in ['PA', 'AP'] and decodable")
    assert sorted(picked["path"]) == ["explicit.dcm", "implicit", "jpegls", "long_header.dcm"]
    assert all(Path(f).is_file() and Path(f).is_absolute() for f in picked["file"])
    assert list(picked["file"]) == [str(root / p) for p in picked["path"]]
    by_callable = select(read_index(out), lambda row: row["ViewPosition"] in ("PA", "AP") and row["decodable"])
    assert list(by_callable["path"]) == list(picked["path"])
    assert len(select(out, "Rows >= 24 and Columns == 20")) == 9  # all but "tiny"
    assert len(select(out)) == 10 and len(select(out, include_errors=True)) == 13
    assert set(select(out, "error_type == 'NotDicomError'", include_errors=True)["path"]) == {
        "truncated_header.dcm", "garbage.dcm"}
    moved = select(out, "ViewPosition == 'LL' and Rows > 1", root=tmp_path / "elsewhere")
    assert list(moved["file"]) == [str(tmp_path / "elsewhere" / "bigendian")]
    with pytest.raises(ValueError, match="columns:"):
        select(out, "NoSuchColumn == 1")
    with pytest.raises(ValueError, match="True/False"):
        select(out, "Rows")
    few = read_index(out, columns=["ViewPosition", "decodable"])
    assert list(few.columns) == ["path", "ViewPosition", "decodable", "error_type"]
    assert list(select(few, "ViewPosition in ['PA', 'AP'] and decodable")["file"]) == list(picked["file"])
    with pytest.raises(ValueError, match="include_patient"):
        read_index(out, columns=["PatientID"])


def test_text_follows_the_specific_character_set(tmp_path: Path, dcm: Writer) -> None:
    name = "J\u00fcrgen-\u00c4rzte"
    path = dcm(tmp_path / "archive" / "utf8", 1, patient_id=name,
               extra={"SpecificCharacterSet": "ISO_IR 192", "Manufacturer": "M\u00fcller \u6771\u829d"})
    out = tmp_path / "index.csv"
    build_index(tmp_path / "archive", out, workers=0, progress=False, include_patient=True, salt=b"s" * 32)
    with open(out, newline="", encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    ds = pydicom.dcmread(path)
    assert row["Manufacturer"] == ds.Manufacturer == "M\u00fcller \u6771\u829d"
    assert row["PatientID"] == name
    assert row["patient_hash"] == hmac.new(b"s" * 32, name.encode(), hashlib.sha256).hexdigest()


def test_bad_arguments_are_refused_before_any_work(tmp_path: Path, dcm: Writer) -> None:
    dcm(tmp_path / "archive" / "a.dcm")
    with pytest.raises(ValueError, match="workers"):
        build_index(tmp_path / "archive", tmp_path / "index.csv", workers=-1)
    with pytest.raises(ValueError, match="salt"):
        build_index(tmp_path / "archive", tmp_path / "index.csv", salt=b"short")
    assert not (tmp_path / "index.csv").exists()


# ---------------------------------------------------------------------------- CSV
def test_csv_index_by_extension(tmp_path: Path, dcm: Writer) -> None:
    root = tmp_path / "archive"
    for i in range(3):
        dcm(root / f"im{i}", i, extra={"ViewPosition": "PA" if i else "AP"})
    out = tmp_path / "index.csv"
    report = build_index(root, out, workers=0, progress=False)
    assert report.format == "csv" and report.path == out
    text = out.read_text()
    assert text.splitlines()[0].startswith("path,size,mtime_ns,inode,ctime_ns,SOPInstanceUID")
    assert "im0,im1" not in text and len(text.splitlines()) == 4
    assert (tmp_path / "index.csv.meta.json").exists()
    again = build_index(root, out, workers=0, progress=False)  # incremental from a CSV too
    assert (again.read, again.reused) == (0, 3)
    assert out.read_text() == text
    pytest.importorskip("pandas")
    assert list(select(out, "ViewPosition == 'PA'")["path"]) == ["im1", "im2"]
    assert read_index(out)["Rows"].tolist() == [24, 24, 24]


def test_csv_when_pyarrow_is_missing(tmp_path: Path, dcm: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    from dicomxray.errors import MissingExtraError

    dcm(tmp_path / "archive" / "a.dcm")
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "pyarrow", None)
        m.setitem(sys.modules, "pyarrow.parquet", None)
        with pytest.raises(MissingExtraError, match="dicomxray.index"):
            build_index(tmp_path / "archive", tmp_path / "index.parquet", workers=0, progress=False)
        report = build_index(tmp_path / "archive", tmp_path / "index.csv", workers=0, progress=False)
    assert report.format == "csv" and report.path == tmp_path / "index.csv"
    assert report.path.read_text().count("\n") == 2

