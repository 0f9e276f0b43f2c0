"""Selections that say what they did: a query typo lists the index's columns (not only those loaded), a
selection matching nothing warns, and a file changed since it was indexed is named."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from dicomxray.errors import IndexQueryError, IndexWarning
from dicomxray.index import build_index, read_index, select, select_files
from dicomxray.testing import write_dicom


def _archive(tmp_path: Path) -> Path:
    for i, view in enumerate(["PA", "AP", "LATERAL"]):
        write_dicom(tmp_path / "archive" / f"v{i}.dcm", np.full((8, 8), i, np.uint16), bits_stored=12,
                    extra={"ViewPosition": view})
    out = tmp_path / "index.parquet"
    build_index(tmp_path / "archive", out, workers=0, progress=False, salt=b"s" * 32)
    return out


def test_query_typo_lists_the_index_columns_not_only_those_loaded(tmp_path: Path) -> None:
    out = _archive(tmp_path)
    with pytest.raises(IndexQueryError, match="columns:.*ViewPosition.*BodyPartExamined"):
        select_files(out, "ViewPositon == 'PA'")  # only the columns the query names are loaded
    with pytest.raises(IndexQueryError, match="columns:.*BodyPartExamined"):
        select(read_index(out, columns=["ViewPosition"]), "ViewPositon == 'PA'")


def test_an_empty_selection_warns(tmp_path: Path) -> None:
    out = _archive(tmp_path)
    with pytest.warns(IndexWarning, match="matches none of the 3 rows"):
        rows = select(out, "ViewPosition == 'LL'")
    assert len(rows) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", IndexWarning)
        assert len(select(out, "ViewPosition == 'PA'")) == 1


def test_a_file_changed_after_indexing_is_named(tmp_path: Path) -> None:
    out = _archive(tmp_path)
    changed = tmp_path / "archive" / "v0.dcm"
    write_dicom(changed, np.full((8, 8), 0, np.uint16), bits_stored=12, extra={"ViewPosition": "LATERAL"})
    message = r"1 of 2 selected files changed since .*\(v0\.dcm\).*1 of them no longer match"
    with pytest.warns(IndexWarning, match=message) as record:
        rows = select_files(out, "ViewPosition in ['PA', 'AP']")
    assert len(record) == 1
    assert sorted(rows["path"]) == ["v1.dcm"]  # its header was read again: LATERAL now, so it no longer matches
    os.unlink(tmp_path / "archive" / "v1.dcm")
    with pytest.warns(IndexWarning, match=r"v1\.dcm"):
        select_files(out, "ViewPosition in ['PA', 'AP']")
    with warnings.catch_warnings():
        warnings.simplefilter("error", IndexWarning)
        select_files(out, "ViewPosition == 'LATERAL'")  # v2 unchanged; v0 now LATERAL but not in the selection
