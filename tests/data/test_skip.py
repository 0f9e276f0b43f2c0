"""``on_error="skip"``: one warning per bad file per pass, substitutes spread over the readable files."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import pytest

from dicomxray import DicomXrayDataset
from dicomxray.data.skiplog import substitutes
from dicomxray.errors import SkipWarning
from dicomxray.testing import chest_phantom, write_dicom


def _folder(root: Path, n: int, bad: set[int]) -> Path:
    for i in range(n):
        p = write_dicom(root / f"{i:03d}.dcm", chest_phantom(24, 20, bits=12, seed=i), bits_stored=12)
        if i in bad:
            p.write_bytes(b"not a dicom file")
    return root


def _epoch(ds: DicomXrayDataset) -> tuple[list[int], list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        served = [ds[i]["meta"]["index"] for i in range(len(ds))]
    return served, [w for w in caught if issubclass(w.category, SkipWarning)]


def test_a_run_of_bad_files_warns_once_each_and_no_file_fills_it(tmp_path: Path) -> None:
    bad = set(range(20))  # 20 bad files, then 5 good ones: one image used to fill 21 of the 25 samples
    ds = DicomXrayDataset(_folder(tmp_path, 25, bad), size=16, on_error="skip")
    served, caught = _epoch(ds)
    assert len(caught) == 20  # was 210 (k(k+1)/2)
    assert sorted(Path(str(w.message).split()[2].rstrip(":")).name for w in caught) == [f"{i:03d}.dcm" for i in bad]
    counts = Counter(served)
    assert set(counts) == set(range(20, 25)) and max(counts.values()) <= 9, counts
    again, caught_again = _epoch(ds)  # the next pass warns again, once per file; same epoch, same substitutes
    assert again == served and len(caught_again) == 20
    assert len(ds.skipped()) == 20


def test_substitutes_are_deterministic_and_follow_the_epoch(tmp_path: Path) -> None:
    root = _folder(tmp_path, 30, set(range(0, 30, 2)))
    a = DicomXrayDataset(root, size=16, on_error="skip")
    b = DicomXrayDataset(root, size=16, on_error="skip")
    first, _ = _epoch(a)
    assert _epoch(b)[0] == first and all(i % 2 == 1 for i in first)
    a.set_epoch(1)
    assert _epoch(a)[0] != first  # another pass draws other substitutes


def test_substitutes_never_give_the_index_and_cover_every_file() -> None:
    order = list(substitutes(3, 0, 10, draws=5))
    assert 3 not in order and set(order[5:]) == set(range(10)) - {3} and len(order) == 5 + 9
    assert list(substitutes(0, 0, 1)) == []


def test_one_readable_file_is_found(tmp_path: Path) -> None:
    ds = DicomXrayDataset(_folder(tmp_path, 40, set(range(40)) - {17}), size=16, on_error="skip")
    served, caught = _epoch(ds)
    assert set(served) == {17} and len(caught) == 39


@pytest.mark.parametrize("n", [2, 7])
def test_the_substitute_is_readable(tmp_path: Path, n: int) -> None:
    ds = DicomXrayDataset(_folder(tmp_path, n, {0}), size=16, on_error="skip")
    served, _ = _epoch(ds)
    assert served[0] != 0 and served[1:] == list(range(1, n))
