"""Bounded bad input: a data set of millions of sequence items is refused in a second, naming the file."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from dicomxray import read_xray
from dicomxray.dicom.elements import MAX_ELEMENTS, MAX_SEQUENCE_ITEMS
from dicomxray.errors import NotDicomError
from dicomxray.index.scan import scan_file
from dicomxray.testing import chest_phantom, write_dicom

ITEMS = 2_000_000


def _endless(tmp_path: Path, *, closed: bool, defined: bool = False) -> Path:
    """A valid file whose header gains a sequence of ``ITEMS`` empty items right after the file meta."""
    src = write_dicom(tmp_path / "src.dcm", chest_phantom(32, 32, bits=12, seed=0), bits_stored=12).read_bytes()
    pos = 132
    while src[pos : pos + 2] == b"\x02\x00":  # the file meta (explicit VR little endian)
        vr = src[pos + 4 : pos + 6]
        if vr in (b"OB", b"UN", b"SQ", b"UT", b"OW"):
            pos += 12 + struct.unpack_from("<L", src, pos + 8)[0]
        else:
            pos += 8 + struct.unpack_from("<H", src, pos + 6)[0]
    items = b"\xfe\xff\x00\xe0\x00\x00\x00\x00" * ITEMS
    if defined:  # (0008,1115) SQ of defined length holding the items
        seq = b"\x08\x00\x15\x11SQ\x00\x00" + struct.pack("<L", len(items)) + items
    else:
        seq = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff" + items + (b"\xfe\xff\xdd\xe0\x00\x00\x00\x00" if closed else b"")
    path = tmp_path / ("closed.dcm" if closed else "open.dcm")
    path.write_bytes(src[:pos] + seq + src[pos:])
    return path


CASES = [pytest.param(True, False, id="closed"), pytest.param(False, False, id="never-closed"),
         pytest.param(True, True, id="defined-length")]


@pytest.mark.parametrize(("closed", "defined"), CASES)
def test_read_xray_refuses_millions_of_items_quickly(tmp_path: Path, closed: bool, defined: bool) -> None:
    path = _endless(tmp_path, closed=closed, defined=defined)
    start = time.perf_counter()
    with pytest.raises(NotDicomError, match=str(path.name)) as err:
        read_xray(path)
    assert time.perf_counter() - start < 3.0
    assert f"{MAX_SEQUENCE_ITEMS:,}" in str(err.value)


@pytest.mark.parametrize(("closed", "defined"), CASES)
def test_the_index_refuses_millions_of_items_quickly(tmp_path: Path, closed: bool, defined: bool) -> None:
    path = _endless(tmp_path, closed=closed, defined=defined)
    start = time.perf_counter()
    row = scan_file(str(path), key=b"k" * 32)
    assert time.perf_counter() - start < 3.0
    assert row["error_type"] == "NotDicomError" and f"{MAX_SEQUENCE_ITEMS:,}" in row["error"], row


def test_millions_of_elements_are_refused(tmp_path: Path) -> None:
    """A bare data set (implicit VR) of empty elements in tag order, more than MAX_ELEMENTS of them."""
    tags = [(g, e) for g in range(0x0010, 0x0020, 2) for e in range(1, MAX_ELEMENTS // 8 + 1000)]
    path = tmp_path / "many"
    path.write_bytes(struct.pack("<HHL", 0x0008, 0x0016, 2) + b"1\0" + b"".join(struct.pack("<HHL", g, e, 0) for g, e in tags))
    start = time.perf_counter()
    with pytest.raises(NotDicomError, match="many"):
        read_xray(path)
    assert time.perf_counter() - start < 3.0
    row = scan_file(str(path), key=b"k" * 32)
    assert row["error_type"] == "NotDicomError" and "data elements" in row["error"], row


def test_ordinary_files_are_untouched(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "ok.dcm", chest_phantom(32, 32, bits=12, seed=0), bits_stored=12)
    assert read_xray(path).shape == (32, 32)
    assert scan_file(str(path), key=b"k" * 32)["error_type"] is None
