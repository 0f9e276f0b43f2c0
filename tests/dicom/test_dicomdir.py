"""One DICOMDIR reader, one reference filter: nothing outside the root, symlinks included, for folders and URLs."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet

from dicomxray.dicom.dicomdir import safe_parts, url_references
from dicomxray.dicom.discover import discover
from dicomxray.testing import chest_phantom, write_dicom

TAGS = {"StudyDate": "20200101", "StudyTime": "101010", "StudyID": "1", "SeriesNumber": "1",
        "InstanceNumber": "1", "AccessionNumber": "A1"}


def _media(tmp_path: Path, extra_refs: list[list[str]]) -> Path:
    """A PS3.10 media folder with one image, and a DICOMDIR that also references ``extra_refs``."""
    media = tmp_path / "media"
    staged = write_dicom(tmp_path / "staging" / "IM1", chest_phantom(20, 20, bits=12), bits_stored=12, extra=TAGS)
    fs = FileSet()
    fs.add(dcmread(staged))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fs.write(media)
    ds = dcmread(media / "DICOMDIR")
    record = next(r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r)
    for parts in extra_refs:
        evil = Dataset()
        evil.update(record)
        evil.ReferencedFileID = parts
        ds.DirectoryRecordSequence.append(evil)
    ds.save_as(media / "DICOMDIR")
    return media


def test_a_reference_through_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    secret = write_dicom(tmp_path / "outside" / "SECRET3", chest_phantom(20, 20, bits=12), bits_stored=12)
    media = _media(tmp_path, [["LINKDIR", "SECRET3"]])
    os.symlink("../outside", media / "LINKDIR")
    found = discover(media)
    assert found.files and all(Path(f).resolve().is_relative_to(media.resolve()) for f in found.files), found.files
    assert secret.resolve() not in {Path(f).resolve() for f in found.files}
    assert found.skipped_kinds.get("DICOMDIR reference outside the root") == 1, found.skipped_kinds
    assert found.skipped_kinds.get("symlinked folder") == 1, found.skipped_kinds


def test_a_symlinked_file_reference_leading_outside_is_refused(tmp_path: Path) -> None:
    write_dicom(tmp_path / "outside" / "SECRET4", chest_phantom(20, 20, bits=12), bits_stored=12)
    media = _media(tmp_path, [["LINK4"]])
    os.symlink(tmp_path / "outside" / "SECRET4", media / "LINK4")
    found = discover(media)
    # the reference is refused; the tree walk itself keeps links to files (a split made of links is common)
    assert found.skipped_kinds.get("DICOMDIR reference outside the root") == 1, found.skipped_kinds


def test_a_reference_through_a_symlink_that_stays_inside_is_kept(tmp_path: Path) -> None:
    media = _media(tmp_path, [])
    ref = next(p for p in media.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    os.symlink(ref.parent.name, media / "ALIAS")
    ds = dcmread(media / "DICOMDIR")
    record = next(r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r)
    record.ReferencedFileID = ["ALIAS", ref.name] if ref.parent != media else [ref.name]
    ds.save_as(media / "DICOMDIR")
    assert len(discover(media).files) == 1


@pytest.mark.parametrize("parts", [[".."], ["..", "x"], ["a", "..", "..", "x"], ["/etc", "passwd"], ["a/b"], ["a\\b"],
                                   ["C:", "x"], [""], ["."], []])
def test_the_filter_refuses_what_is_not_a_plain_name(parts: list[str]) -> None:
    assert not safe_parts(parts)


def test_the_filter_keeps_plain_names() -> None:
    assert safe_parts(["DIR000", "IM000001"]) and safe_parts(["1.2.840.1"])


def test_url_references_use_the_same_filter(tmp_path: Path) -> None:
    media = _media(tmp_path, [["..", "outside", "IM1"], ["SUB", "..", "..", "x"]])
    listed = {f"s3://bucket/media/{p.relative_to(media).as_posix()}": None for p in media.rglob("*") if p.is_file()}
    listed["s3://bucket/outside/IM1"] = None
    refs = url_references((media / "DICOMDIR").read_bytes(), "s3://bucket/media/DICOMDIR", listed)
    assert refs is not None
    assert refs.refused == ["../outside/IM1", "SUB/../../x"]
    assert len(refs.found) == 1 and refs.found[0].startswith("s3://bucket/media/")
