"""One answer per question in the DICOM layer: transfer syntax UIDs, the VR table, the ``DICM`` test and the
translation of pydicom's parse errors each live in one place; dead names stay gone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import dicomxray

SRC = Path(dicomxray.__file__).resolve().parent
#: The library proper: dicomxray.testing writes files (a preamble, stand-in syntaxes), it does not read them.
LIBRARY = [p for p in sorted(SRC.rglob("*.py")) if "testing" not in p.relative_to(SRC).parts]


def _holding(pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return [p.relative_to(SRC).as_posix() for p in LIBRARY if rx.search(p.read_text(encoding="utf-8"))]


def test_transfer_syntax_uids_are_defined_once():
    assert _holding(r"""["']1\.2\.840\.10008\.1\.2(\.[\d.]+)?["']""") == ["dicom/syntaxes.py"]


def test_one_vr_table():
    assert _holding(r'b"OB"') == ["dicom/elements.py"]
    from dicomxray.dicom.elements import LONG_VRS

    assert {b"SV", b"UV"} <= LONG_VRS  # 64-bit VRs have a 4-byte length too (PS3.5 7.1.2)


def test_the_dicm_magic_is_tested_once():
    assert _holding(r'b"DICM"') == ["dicom/elements.py"]


@pytest.mark.parametrize("head,start", [
    pytest.param(b"\0" * 128 + b"DICM" + b"\2\0", 132, id="preamble"),
    pytest.param(b"\x08\x00\x05\x00CS", 0, id="bare-data-set"),
    pytest.param(b"\0" * 128 + b"DIC", 0, id="short"),
])
def test_dataset_start(head, start):
    from dicomxray.dicom.elements import dataset_start

    assert dataset_start(head) == start


def test_pydicoms_parse_errors_are_translated_in_one_place():
    assert _holding(r"not a readable DICOM file") == ["io/translate.py"]
    from dicomxray.io.translate import unreadable_dataset

    err = unreadable_dataset(KeyError("(0008,0005)"), "/data/x.dcm")
    assert str(err) == "/data/x.dcm: not a readable DICOM file (KeyError: '(0008,0005)')" and err.path == "/data/x.dcm"
    assert str(unreadable_dataset(ValueError("bad"))) == "not a readable DICOM file (ValueError: bad)"


def test_dead_names_are_gone():
    from dicomxray.cli import _options
    from dicomxray.index import table, truth

    assert not hasattr(_options, "existing_dir")
    assert not hasattr(table, "INSTALL_HINT")
    assert not hasattr(truth, "_VOI_LUT_SEQUENCE")


def test_docstrings_name_no_missing_files():
    assert _holding(r"ARCHITECTURE\.md|:mod:`\._elements`") == []
