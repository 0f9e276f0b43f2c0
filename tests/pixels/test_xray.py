from __future__ import annotations

import pickle
import warnings

import numpy as np
import pydicom
import pytest
from pydicom import uid

from dicomxray import (
    CorruptPixelDataError,
    DecodeConfig,
    DicomXrayError,
    ImageTooLargeError,
    MissingPixelDataError,
    NotDicomError,
    PipelineConfig,
    RenderConfig,
    SourceFileNotFoundError,
    UnsupportedImageError,
    load_xray,
    read_xray,
)
from dicomxray.testing import chest_phantom, classic_read_xray


def test_shapes_and_dtypes(write):
    img = chest_phantom(300, 500, bits=12)
    path = write(img, bits_stored=12)
    assert read_xray(path).shape == (300, 500)
    assert read_xray(path, 128).shape == (128, 128)
    assert read_xray(path, 128, keep_ratio=True).shape == (77, 128)
    assert read_xray(path, 128, letterbox=True).shape == (128, 128)
    x = read_xray(path, 64, dtype="float32")
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0


def test_meta_reports_what_was_done(write):
    img = chest_phantom(200, 260, bits=12)
    path = write(img, bits_stored=12, photometric="MONOCHROME1", window=(2000, 3000), syntax=uid.JPEGLSLossless,
                 patient_id="SECRET-ID", extra={"PatientBirthDate": "19700101"})
    meta = load_xray(path, 100, letterbox=True).meta
    assert meta.decoder == "imagecodecs" and meta.inverted and meta.voi.startswith("window 2000/3000")
    assert meta.original_shape == (200, 260) and meta.geometry.pad_top > 0
    assert "SECRET-ID" not in repr(meta.to_dict()) and "1970" not in repr(meta.to_dict())


def test_parity_with_classic_recipe_full_resolution(write):
    for i, (photometric, window) in enumerate([("MONOCHROME2", None), ("MONOCHROME1", (1500, 2500)),
                                               ("MONOCHROME2", (2000, 1000))]):
        img = chest_phantom(256, 320, bits=12, seed=i)
        path = write(img, bits_stored=12, photometric=photometric, window=window)
        ours, theirs = read_xray(path), classic_read_xray(str(path))
        assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1


def test_resized_output_close_to_classic_lanczos(write):
    img = chest_phantom(1200, 1000, bits=12)
    path = write(img, bits_stored=12)
    ours, theirs = read_xray(path, 256).astype(float), classic_read_xray(str(path), 256).astype(float)
    psnr = 10 * np.log10(255**2 / np.mean((ours - theirs) ** 2))
    assert psnr > 35


def test_reads_without_preamble_and_without_transfer_syntax(write, tmp_path):
    img = chest_phantom(64, 64, bits=12)
    path = write(img, bits_stored=12, syntax=uid.ImplicitVRLittleEndian)
    raw = path.read_bytes()
    bare = tmp_path / "bare.dcm"
    bare.write_bytes(raw[132:])  # no preamble, no DICM
    assert np.array_equal(read_xray(bare), read_xray(path))
    nots = write(img, bits_stored=12, syntax=uid.ImplicitVRLittleEndian, file_meta_syntax=False)
    assert "TransferSyntaxUID" not in pydicom.dcmread(nots, force=True).file_meta
    assert np.array_equal(read_xray(nots), read_xray(path))


def test_excess_padding_after_pixel_data_reads(write):
    img = chest_phantom(64, 80, bits=12)
    path = write(img, bits_stored=12)
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData + b"\0" * 1000
    ds.save_as(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning leaks out of us
        out = read_xray(path)
    assert out.shape == (64, 80)


def test_error_not_dicom(tmp_path):
    p = tmp_path / "notes.dcm"
    p.write_text("this is not a DICOM file at all\n" * 10)
    with pytest.raises(NotDicomError, match="notes.dcm"):
        read_xray(p)


def test_error_missing_file(tmp_path):
    with pytest.raises(SourceFileNotFoundError, match="nope.dcm"):
        read_xray(tmp_path / "nope.dcm")


def test_error_no_pixel_data(write):
    path = write(np.zeros((4, 4), np.uint16))
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(MissingPixelDataError, match=str(path.name)):
        read_xray(path)


def test_error_truncated(write):
    path = write(chest_phantom(64, 64, bits=12), bits_stored=12)
    data = path.read_bytes()
    path.write_bytes(data[:-500])
    with pytest.raises(CorruptPixelDataError, match="truncated"):
        read_xray(path)


def test_error_corrupt_compressed_stream(write):
    path = write(chest_phantom(64, 64, bits=12), bits_stored=12, syntax=uid.JPEGLSLossless)
    data = bytearray(path.read_bytes())
    start = data.find(b"\xff\xd8\xff\xf7")  # JPEG-LS SOI + SOF55
    data[start + 20 : start + 400] = b"\xff" * 380
    path.write_bytes(bytes(data))
    with pytest.raises(DicomXrayError, match=path.name):
        read_xray(path)


def test_error_declared_size_over_limit_refused_before_allocation(write):
    path = write(np.zeros((4, 4), np.uint16))
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 2  # declares 16 GB
    ds.save_as(path)
    with pytest.raises(ImageTooLargeError, match="max_pixels"):
        read_xray(path)
    with pytest.raises(ImageTooLargeError):
        read_xray(write(np.zeros((40, 40), np.uint16)), config=PipelineConfig(decode=DecodeConfig(max_pixels=1000)))


def test_error_colour_image(write):
    path = write(np.zeros((4, 4), np.uint8))
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "RGB"
    ds.SamplesPerPixel = 3
    ds.save_as(path)
    with pytest.raises(UnsupportedImageError, match="RGB"):
        read_xray(path)


@pytest.mark.parametrize("cls", [NotDicomError, CorruptPixelDataError, ImageTooLargeError, SourceFileNotFoundError])
def test_errors_survive_pickle(cls):
    err = cls("/data/x.dcm: broken", path="/data/x.dcm")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == str(err) and back.path == "/data/x.dcm"
    assert isinstance(back, DicomXrayError)


def test_reduced_resolution_jpeg2000_is_close_to_full(write):
    img = chest_phantom(1024, 1024, bits=12)
    path = write(img, bits_stored=12, syntax=uid.JPEG2000Lossless)
    window = RenderConfig(normalize="window")  # minmax is refused with reduced_resolution
    fast = load_xray(path, 256, config=PipelineConfig(decode=DecodeConfig(reduced_resolution=True), render=window))
    full = load_xray(path, 256, config=PipelineConfig(render=window))
    assert fast.meta.reduce == 1 and full.meta.reduce == 0
    a, b = fast.pixels.astype(float), full.pixels.astype(float)
    assert 10 * np.log10(255**2 / np.mean((a - b) ** 2)) > 35


def test_reads_a_bare_dataset_without_file_meta(write, tmp_path):
    img = chest_phantom(40, 50, bits=12)
    path = write(img, bits_stored=12, syntax=uid.ImplicitVRLittleEndian)
    raw = path.read_bytes()
    group_length = int.from_bytes(raw[140:144], "little")  # (0002,0000) UL, explicit VR: value at 132 + 8
    bare = tmp_path / "nometa.dcm"
    bare.write_bytes(raw[132 + 12 + group_length :])  # starts at group 0008
    assert bare.read_bytes()[:2] == b"\x08\x00"
    assert np.array_equal(read_xray(bare), read_xray(path))


def test_keep_ratio_and_letterbox_together_is_refused(write):
    with pytest.raises(ValueError, match="keep_ratio or letterbox"):
        read_xray(write(chest_phantom(20, 20, bits=12)), 10, keep_ratio=True, letterbox=True)
