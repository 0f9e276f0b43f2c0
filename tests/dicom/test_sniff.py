"""One rule for "is this a DICOM?": read_xray, discovery (with and without an extension) and the index agree."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from dicomxray import read_xray
from dicomxray.dicom.discover import discover
from dicomxray.errors import NotDicomError
from dicomxray.index.scan import scan_file
from dicomxray.testing import chest_phantom, write_dicom


def _bare(tmp_path: Path, first_group: int) -> bytes:
    """A data set without preamble or file meta (implicit VR little endian) whose first group is ``first_group``."""
    src = write_dicom(tmp_path / "src" / "full.dcm", chest_phantom(32, 40, bits=12, seed=0), bits_stored=12)
    ds = pydicom.dcmread(src)
    for elem in list(ds):
        if elem.tag.group < first_group:
            del ds[elem.tag]
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, True
    write_dataset(buf, ds)
    return buf.getvalue()


def _verdicts(tmp_path: Path, data: bytes) -> dict[str, str]:
    """What each consumer says of the same bytes: 'ok' or the error's class name."""
    out: dict[str, str] = {}
    for name in ("x.dcm", "x"):
        folder = tmp_path / f"case-{name}"
        folder.mkdir()
        (folder / name).write_bytes(data)
        out[f"discover {name}"] = "ok" if discover(folder).files else "skipped"
        try:
            read_xray(folder / name)
            out[f"read_xray {name}"] = "ok"
        except Exception as exc:
            out[f"read_xray {name}"] = type(exc).__name__
        row = scan_file(str(folder / name), key=b"k" * 32)
        out[f"index {name}"] = row["error_type"] or "ok"
    return out


@pytest.mark.parametrize("group", [0x0008, 0x0010, 0x0018, 0x0020, 0x0028], ids=lambda g: f"first-group-{g:04X}")
def test_a_bare_data_set_is_read_by_everyone(tmp_path: Path, group: int) -> None:
    verdicts = _verdicts(tmp_path, _bare(tmp_path, group))
    assert set(verdicts.values()) == {"ok"}, verdicts


@pytest.mark.parametrize("data", [
    pytest.param(b"\x08\x00hello world, this is a text file\n" * 4, id="text-starting-08-00"),
    pytest.param(b"\x10\x00 notes about patient 0010\n" * 4, id="text-starting-10-00"),
    pytest.param(b"\x08\x00", id="two-bytes"),
    pytest.param(b"just text\n" * 40, id="plain-text"),
])
def test_not_dicom_is_not_dicom_for_anyone(tmp_path: Path, data: bytes) -> None:
    verdicts = _verdicts(tmp_path, data)
    assert verdicts == {"discover x.dcm": "ok", "read_xray x.dcm": "NotDicomError", "index x.dcm": "NotDicomError",
                        "discover x": "skipped", "read_xray x": "NotDicomError", "index x": "NotDicomError"}, verdicts


def test_one_function_answers(tmp_path: Path) -> None:
    from dicomxray.dicom.sniff import SNIFF_BYTES, classify, is_dicom

    data = _bare(tmp_path, 0x0010)
    assert is_dicom(data[:SNIFF_BYTES], len(data)) and classify(data[:SNIFF_BYTES], len(data)) == "dicom"
    assert not is_dicom(b"\x08\x00hello", 7)
    full = write_dicom(tmp_path / "y.dcm", chest_phantom(16, 16, bits=12, seed=0), bits_stored=12).read_bytes()
    assert classify(full[:SNIFF_BYTES], len(full)) == "dicom"
    with pytest.raises(NotDicomError, match="x.txt"):
        read_xray_bytes = tmp_path / "x.txt"
        read_xray_bytes.write_bytes(b"\x08\x00hello world" * 10)
        read_xray(read_xray_bytes)


def test_url_discovery_and_the_url_index_use_the_same_rule(tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    import s3fs

    from dicomxray.dicom.discover_url import discover_url
    from dicomxray.index.scan_url import scan_url
    from remote_servers import make_bucket, moto_server, s3_options

    bare, text = _bare(tmp_path, 0x0010), b"\x08\x00hello world, this is a text file\n" * 4
    with moto_server() as endpoint:
        make_bucket(endpoint, "data")
        so = s3_options(endpoint)
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **so)
        fs.pipe({"data/root/bare": bare, "data/root/text": text})
        found = discover_url("s3://data/root", storage_options=so)
        assert found.files == ["s3://data/root/bare"] and found.skipped_kinds == {"not DICOM": 1}
        assert scan_url("s3://data/root/bare", key=b"k" * 32, storage_options=so)["error_type"] is None
        assert scan_url("s3://data/root/text", key=b"k" * 32, storage_options=so)["error_type"] == "NotDicomError"
