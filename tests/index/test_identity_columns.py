"""One answer for a row's identity (io/identity.FileIdentity.row, in table.IDENTITY_COLUMNS) and one lister for
the index's root (dicom/sources.find_sources)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import dicomxray
from dicomxray.errors import SourceFileNotFoundError
from dicomxray.index import build_index
from dicomxray.index.scan import scan_file
from dicomxray.index.table import IDENTITY_COLUMNS
from dicomxray.io.identity import FileIdentity
from dicomxray.io.source import file_identity
from dicomxray.testing import chest_phantom, write_dicom


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_a_rows_identity_is_the_file_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_dicom(tmp_path / "data" / "a.dcm", chest_phantom(32, 32, bits=12), bits_stored=12)
    row = scan_file(str(src), key=b"k" * 16)
    assert tuple(row[c] for c in IDENTITY_COLUMNS) == file_identity(src).row()
    monkeypatch.setattr(FileIdentity, "row", lambda self: (1, 2, 3, 4))  # the one definition, changed
    row = scan_file(str(src), key=b"k" * 16)
    assert tuple(row[c] for c in IDENTITY_COLUMNS) == (1, 2, 3, 4)


def test_an_unchanged_file_is_told_by_the_one_comparison(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_dicom(tmp_path / "data" / "a.dcm", chest_phantom(32, 32, bits=12), bits_stored=12)
    out = tmp_path / "i.csv"
    assert build_index(tmp_path / "data", out, progress=False).read == 1
    assert build_index(tmp_path / "data", out, progress=False).reused == 1
    monkeypatch.setattr("dicomxray.index.table.unchanged", lambda identity, recorded: False)
    monkeypatch.setattr("dicomxray.index.build.unchanged", lambda identity, recorded: False)
    assert build_index(tmp_path / "data", out, progress=False).read == 1


def test_an_index_root_without_dicom_files_is_a_named_error(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("not a DICOM")
    with pytest.raises(SourceFileNotFoundError, match="1 non-DICOM file skipped"):
        build_index(tmp_path / "data", tmp_path / "i.csv", progress=False)
    assert not (tmp_path / "i.csv").exists()


def test_the_identity_columns_are_listed_once(tmp_path: Path) -> None:
    write_dicom(tmp_path / "data" / "a.dcm", chest_phantom(32, 32, bits=12), bits_stored=12)
    build_index(tmp_path / "data", tmp_path / "i.csv", progress=False)
    (row,) = _rows(tmp_path / "i.csv")
    assert tuple(int(row[c]) for c in IDENTITY_COLUMNS) == file_identity(tmp_path / "data" / "a.dcm").row()
    src = Path(dicomxray.__file__).resolve().parent  # the package under test
    spelled = [p.relative_to(src).as_posix() for p in sorted(src.rglob("*.py")) if '"mtime_ns", "inode"' in p.read_text()]
    assert spelled == ["index/table.py"], spelled
