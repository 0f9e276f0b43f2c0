"""What the index promises: ``decodable`` is False exactly when ``read_xray`` refuses the file, with the
reason in ``undecodable_reason``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomxray import read_xray
from dicomxray.errors import DicomXrayError
from dicomxray.index import build_index, read_index
from dicomxray.testing import write_dicom


def _gray(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4096, (16, 12), dtype=np.uint16)


def _item(**values: Any) -> Dataset:
    item = Dataset()
    for key, value in values.items():
        setattr(item, key, value)
    return item


def _lut(n: int = 4096) -> tuple[int, np.ndarray, int]:
    return 0, (np.arange(n) // 16).astype(np.uint16), 8


#: name -> (pixels, write_dicom keywords).  Accepted files first, then each kind read_xray refuses.
CASES: dict[str, tuple[Callable[[], np.ndarray], dict[str, Any]]] = {
    "plain": (_gray, {"bits_stored": 12}),
    "window": (_gray, {"bits_stored": 12, "window": (2000, 4000)}),
    "monochrome1": (_gray, {"bits_stored": 12, "photometric": "MONOCHROME1"}),
    "voi_lut": (_gray, {"bits_stored": 12, "voi_lut": _lut()}),
    "modality_lut": (_gray, {"bits_stored": 12, "modality_lut": _lut()}),
    "rescale": (_gray, {"bits_stored": 12, "rescale": (2.0, -1024.0), "window": (40, 400)}),
    "empty_voi_lut_item": (_gray, {"bits_stored": 12, "extra": {"VOILUTSequence": Sequence([Dataset()])}}),
    "rgb": (lambda: np.zeros((16, 36), np.uint8),
            {"extra": {"SamplesPerPixel": 3, "PhotometricInterpretation": "RGB", "PlanarConfiguration": 0,
                       "Columns": 12}}),
    "ybr": (lambda: np.zeros((16, 36), np.uint8),
            {"extra": {"SamplesPerPixel": 3, "PhotometricInterpretation": "YBR_FULL", "PlanarConfiguration": 0,
                       "Columns": 12}}),
    "palette": (lambda: np.zeros((16, 12), np.uint8), {"photometric": "PALETTE COLOR"}),
    "one_bit": (lambda: np.zeros((16, 2), np.uint8),
                {"extra": {"BitsAllocated": 1, "BitsStored": 1, "HighBit": 0, "Columns": 16}}),
    "pixel_representation_2": (_gray, {"bits_stored": 12, "extra": {"PixelRepresentation": 2}}),
    "bits_stored_over_allocated": (_gray, {"extra": {"BitsStored": 20, "HighBit": 19}}),
    "broken_voi_lut_item": (_gray, {"bits_stored": 12,
                                    "extra": {"VOILUTSequence": Sequence([_item(LUTDescriptor=[4096, 0, 8])])}}),
    "broken_modality_lut_item": (_gray, {"bits_stored": 12, "extra": {
        "ModalityLUTSequence": Sequence([_item(LUTExplanation="no descriptor, no data")])}}),
    "unknown_voi_function": (_gray, {"bits_stored": 12, "window": (2000, 4000), "voi_function": "BOGUS"}),
    "functional_group_voi_function": (_gray, {"bits_stored": 12, "extra": {"SharedFunctionalGroupsSequence": Sequence([
        _item(FrameVOILUTSequence=Sequence([_item(WindowCenter=40, WindowWidth=400, VOILUTFunction="BOGUS")]))])}}),
}
REFUSED = {"rgb", "ybr", "palette", "one_bit", "pixel_representation_2", "bits_stored_over_allocated",
           "broken_voi_lut_item", "broken_modality_lut_item", "unknown_voi_function", "functional_group_voi_function"}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("truth")
    for name, (pixels, kwargs) in CASES.items():
        write_dicom(root / "archive" / f"{name}.dcm", pixels(), **kwargs)
    out = root / "index.parquet"
    build_index(root / "archive", out, workers=0, progress=False, salt=b"s" * 32)
    rows = {r["path"].removesuffix(".dcm"): r for r in read_index(out).to_dict("records")}
    return root / "archive", rows


@pytest.mark.parametrize("name", list(CASES))
def test_decodable_is_false_exactly_when_read_xray_refuses(
    indexed: tuple[Path, dict[str, dict[str, Any]]], name: str
) -> None:
    archive, rows = indexed
    row = rows[name]
    try:
        read_xray(archive / f"{name}.dcm")
        refused: DicomXrayError | None = None
    except DicomXrayError as exc:
        refused = exc
    assert (refused is not None) == (name in REFUSED), f"the test's own expectation for {name}: {refused!r}"
    assert row["error_type"] is None or row["error_type"] is pd_na(), row["error"]
    assert bool(row["decodable"]) == (refused is None), (name, row["undecodable_reason"], refused)
    if refused is None:
        assert row["undecodable_reason"] is None or row["undecodable_reason"] is pd_na()
    else:
        assert str(row["undecodable_reason"]).startswith(type(refused).__name__ + ": "), (
            row["undecodable_reason"], refused)


def pd_na() -> Any:
    import pandas as pd

    return pd.NA


def test_reason_for_a_syntax_without_backend_follows_the_installed_decoders(tmp_path: Path) -> None:
    """A row reused from an earlier index gets its decoder verdict again from this machine's backends."""
    write_dicom(tmp_path / "a" / "x.dcm", _gray(), bits_stored=12)
    out = tmp_path / "index.csv"
    build_index(tmp_path / "a", out, workers=0, progress=False, salt=b"s" * 32)
    text = out.read_text()
    syntax = "1.2.840.10008.1.2.1"
    out.write_text(text.replace(syntax, "1.2.840.10008.1.2.4.999"))  # a syntax no backend decodes
    report = build_index(tmp_path / "a", out, workers=0, progress=False, salt=b"s" * 32)
    assert report.reused == 1
    row = read_index(out).iloc[0]
    assert not row["decodable"]
    assert str(row["undecodable_reason"]).startswith("DecoderUnavailableError: ")
    out.write_text(out.read_text().replace("1.2.840.10008.1.2.4.999", syntax))
    build_index(tmp_path / "a", out, workers=0, progress=False, salt=b"s" * 32)
    row = read_index(out).iloc[0]
    assert row["decodable"] and row["undecodable_reason"] is pd_na()


def test_files_with_their_own_windows_share_one_verdict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real archive gives every film its own window: the verdict is judged once per kind of value (a render of a
    stand-in costs about a millisecond), while a value that does not parse is still judged, and refused, alone."""
    import dicomxray.index.truth as truth
    from dicomxray.index.scan import scan_file

    calls: list[object] = []
    render = truth._render
    monkeypatch.setattr(truth, "_render", lambda *a: calls.append(a) or render(*a))
    monkeypatch.setattr(truth, "_VERDICTS", {})
    for i in range(20):
        path = write_dicom(tmp_path / f"w{i}.dcm", _gray(i), bits_stored=12, window=(1000 + 3.7 * i, 2000 + 1.3 * i))
        assert scan_file(str(path), key=b"k" * 32)["undecodable_reason"] is None
    assert len(calls) == 1
    bad = write_dicom(tmp_path / "bad.dcm", _gray(), bits_stored=12, window=(1000, 2000))
    data = bytearray(bad.read_bytes())
    at = data.index(b"2000")
    data[at:at + 4] = b"2x00"  # Window Width no longer a number
    bad.write_bytes(bytes(data))
    row = scan_file(str(bad), key=b"k" * 32)
    try:
        read_xray(bad)
        refused = None
    except DicomXrayError as exc:
        refused = type(exc).__name__
    assert (row["undecodable_reason"] or "").split(":")[0] == (refused or "")


def test_width_classes_keep_verdicts_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under an unknown VOI LUT Function a width in (0, 1) is kept (and refused) while a width of 0 is dropped: the
    verdict cache must not hand one's verdict to the other, whichever is scanned first."""
    import dicomxray.index.truth as truth
    from dicomxray.index.scan import scan_file

    monkeypatch.setattr(truth, "_VERDICTS", {})
    for order in ((0.5, 0.0), (0.0, 0.5)):
        truth._VERDICTS.clear()
        for width in order:
            path = write_dicom(tmp_path / f"w{width}-{order[0]}.dcm", _gray(), bits_stored=12, window=(1000, width),
                               voi_function="FOO")
            try:
                read_xray(path)
                refused = ""
            except DicomXrayError as exc:
                refused = type(exc).__name__
            assert (scan_file(str(path), key=b"k" * 32)["undecodable_reason"] or "").split(":")[0] == refused, width
