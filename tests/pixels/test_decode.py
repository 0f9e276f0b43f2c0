from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from pydicom import uid

from dicomxray import DecodeConfig, DecoderUnavailableError, Pipeline, PipelineConfig, capability_report
from dicomxray.dicom.syntaxes import JPEG_XL
from dicomxray.pixels.decode import BACKENDS, SYNTAX_NAMES, backends_for, decode_frame
from dicomxray.testing import ENCODABLE_SYNTAXES

LOSSY = {uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLSNearLossless, uid.JPEG2000, uid.HTJ2K}


def _reference(path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path).pixel_array


def _stored(phantom: np.ndarray, syntax: str) -> tuple[np.ndarray, int]:
    if syntax == uid.JPEGBaseline8Bit:
        return (phantom >> 4).astype(np.uint8), 8
    return phantom, 12


@pytest.mark.parametrize("syntax", [pytest.param(s, id=SYNTAX_NAMES[s]) for s in ENCODABLE_SYNTAXES])
def test_default_backend_matches_pydicom(write, phantom, syntax):
    stored, bits = _stored(phantom, syntax)
    path = write(stored, syntax=syntax, bits_stored=bits)
    result = decode_frame(Pipeline().header(path))
    ref = stored if syntax in JPEG_XL else _reference(path)  # pydicom 3.0 has no JPEG XL decoder
    assert result.array.shape == ref.shape
    diff = np.abs(result.array.astype(np.int64) - ref.astype(np.int64)).max()
    if syntax in LOSSY:
        assert diff <= 1  # decoders may round a lossy IDCT/wavelet differently by one
    else:
        assert diff == 0
        assert np.array_equal(result.array, stored)


@pytest.mark.parametrize("syntax", sorted((set(ENCODABLE_SYNTAXES) - LOSSY) - {uid.ExplicitVRLittleEndian}))
def test_every_available_backend_is_bit_identical_on_lossless(write, phantom, syntax):
    path = write(phantom, syntax=syntax, bits_stored=12)
    header = Pipeline().header(path)
    tried = 0
    for name in backends_for(syntax):
        if BACKENDS.get(name).is_available(syntax):
            tried += 1
            assert np.array_equal(decode_frame(header, backend=name).array.astype(np.int64), phantom), name
    assert tried >= 1


def test_signed_pixels_roundtrip_through_compression(write):
    rng = np.random.default_rng(0)
    stored = rng.integers(-2048, 2047, (40, 50), dtype=np.int16)
    path = write(stored, syntax=uid.RLELossless, bits_stored=12)
    arr = decode_frame(Pipeline().header(path)).array
    assert np.array_equal(arr.view(np.int16), stored)


def test_multiframe_picks_the_requested_frame(write, phantom):
    frames = np.stack([phantom, phantom[::-1], 4095 - phantom]).astype(np.uint16)
    for syntax in (uid.ExplicitVRLittleEndian, uid.JPEGLSLossless):
        header = Pipeline().header(write(frames, syntax=syntax, bits_stored=12))
        assert header.frames == 3
        for i in range(3):
            assert np.array_equal(decode_frame(header, frame=i).array, frames[i])


def test_capability_report_covers_every_xray_syntax():
    report = {row["uid"]: row for row in capability_report()}
    assert set(report) == {str(s) for s in SYNTAX_NAMES}
    missing = [row["name"] for row in report.values() if row["backend"] is None]
    assert missing == [], f"not decodable after install: {missing}"
    assert report[uid.JPEGLosslessSV1]["backend"] == "imagecodecs"


def test_missing_decoder_names_the_pip_package(write, phantom, monkeypatch):
    path = write(phantom, syntax=uid.JPEGLSLossless, bits_stored=12)
    header = Pipeline().header(path)
    for name in ("imagecodecs", "pydicom"):
        monkeypatch.setattr(BACKENDS.get(name), "is_available", lambda syntax=None: False)
    monkeypatch.setattr(BACKENDS.get("imagecodecs"), "missing_packages", lambda syntax=None: ["imagecodecs"])
    with pytest.raises(DecoderUnavailableError) as info:
        decode_frame(header)
    assert "pip install imagecodecs" in str(info.value)
    assert str(path) in str(info.value)
    assert "JPEG-LS" in str(info.value)


def test_a_backend_rejecting_the_data_is_final_and_names_the_alternative(write, phantom, monkeypatch):
    path = write(phantom, syntax=uid.JPEGLSLossless, bits_stored=12)

    def boom(header, frame, reduce=0, threads=1):
        raise RuntimeError("simulated codec failure")

    monkeypatch.setattr(BACKENDS.get("imagecodecs"), "decode", boom)
    from dicomxray import CorruptPixelDataError

    with pytest.raises(CorruptPixelDataError, match="backend='pydicom'"):
        decode_frame(Pipeline().header(path))
    forced = decode_frame(Pipeline().header(path), backend="pydicom")  # the user's explicit choice for a quirky file
    assert forced.backend == "pydicom" and np.array_equal(forced.array, phantom)


def test_uninstalled_backends_are_skipped(write, phantom, monkeypatch):
    path = write(phantom, syntax=uid.JPEGLSLossless, bits_stored=12)
    monkeypatch.setattr(BACKENDS.get("imagecodecs"), "is_available", lambda syntax=None: False)
    result = decode_frame(Pipeline().header(path))
    assert result.backend == "pydicom" and np.array_equal(result.array, phantom)


def test_failed_reduced_decode_retries_at_full_resolution(write, phantom, monkeypatch):
    path = write(phantom, syntax=uid.JPEG2000Lossless, bits_stored=12)

    def boom(header, frame, reduce=0, threads=1):
        raise RuntimeError("simulated reduce failure")

    monkeypatch.setattr(BACKENDS.get("pillow"), "decode", boom)
    result = decode_frame(Pipeline().header(path), reduce=1)
    assert result.backend == "imagecodecs" and result.reduce == 0 and np.array_equal(result.array, phantom)


def test_a_rust_panic_in_a_decoder_becomes_a_named_error(write, phantom, monkeypatch):
    class PanicException(BaseException):  # what pyo3 raises (pylibjpeg-rle): not an Exception subclass
        pass

    def panic(header, frame, reduce=0, threads=1):
        raise PanicException("index out of bounds")

    path = write(phantom, syntax=uid.RLELossless, bits_stored=12)
    for name in ("imagecodecs", "pydicom"):
        monkeypatch.setattr(BACKENDS.get(name), "decode", panic)
    from dicomxray import CorruptPixelDataError

    with pytest.raises(CorruptPixelDataError, match="PanicException"):
        decode_frame(Pipeline().header(path))


def test_pydicom_backend_tries_each_plugin(write, phantom):
    # Pillow (often pydicom's first plugin) cannot decode 12-bit JPEG Extended; the next plugin can.
    path = write(phantom, syntax=uid.JPEGExtended12Bit, bits_stored=12)
    if not BACKENDS.get("pydicom").is_available(uid.JPEGExtended12Bit):
        pytest.skip("no pydicom plugin for JPEG Extended")
    arr = decode_frame(Pipeline().header(path), backend="pydicom").array
    assert np.abs(arr.astype(int) - decode_frame(Pipeline().header(path)).array.astype(int)).max() <= 1


def test_the_codestream_guards_run_for_every_backend(write, phantom, tmp_path):
    import pydicom
    from pydicom.encaps import encapsulate

    from dicomxray import CorruptPixelDataError

    path = write(phantom, syntax=uid.JPEGLSLossless, bits_stored=12)
    ds = pydicom.dcmread(path)
    stream = imagecodecs_stream = bytes(pydicom.encaps.get_frame(ds.PixelData, 0))
    ds.PixelData = encapsulate([stream[: stream.rfind(b"\xff\xd9")]])  # no EOI: CharLS would spin on it
    bad = tmp_path / "no_eoi.dcm"
    ds.save_as(bad)
    assert imagecodecs_stream
    for name in ("imagecodecs", "pydicom"):
        with pytest.raises(CorruptPixelDataError, match="EOI"):
            decode_frame(Pipeline().header(bad), backend=name)


def test_an_unknown_backend_is_refused_where_the_registry_is_known():
    with pytest.raises(ValueError, match="backend must be one of"):
        Pipeline(PipelineConfig(decode=DecodeConfig(backend="nope")))
    with pytest.raises(ValueError, match="backend must be"):
        DecodeConfig(backend="")  # not a name at all: the config refuses it itself
    assert Pipeline(PipelineConfig(decode=DecodeConfig(backend="pydicom"))).config.decode.backend == "pydicom"


def test_import_dicomxray_loads_the_pipeline_only():
    import subprocess
    import sys

    code = ("import sys, dicomxray; heavy = [m for m in ('torch', 'dicomxray.cli', 'dicomxray.testing', "
            "'dicomxray.data.dataset', 'albumentations', 'pandas') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
